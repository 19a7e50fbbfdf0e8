//! The RFC 6962 / RFC 9162 Merkle tree over ledger entries, with blake3:
//! `leaf = H(0x00 ‖ entry)`, `node = H(0x01 ‖ left ‖ right)`, and the root
//! of the empty tree is `H("")`.
//!
//! Invariant: no IO. Proofs come two ways: over a slice of leaf hashes (the
//! reference, and what a verifier uses on an export), and as a plan of the
//! complete subtrees a store must read ([`inclusion_nodes`],
//! [`consistency_nodes`]): O(log n) reads, computed without touching storage,
//! and tested to give the same proofs.
//! Root and proof comparisons go through `blake3::Hash`, whose equality is
//! constant-time.

pub use blake3::Hash;

pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[0x00]);
    h.update(entry);
    h.finalize()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[0x01]);
    h.update(left.as_bytes());
    h.update(right.as_bytes());
    h.finalize()
}

pub fn empty_root() -> Hash {
    blake3::hash(b"")
}

/// The largest power of two strictly smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// MTH(D[n]) over leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]): the inclusion proof of leaf `index`.
pub fn inclusion_proof(index: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut out = Vec::new();
    path(index, leaves, &mut out);
    Some(out)
}

fn path(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &leaves[..k], out);
        out.push(root(&leaves[k..]));
    } else {
        path(m - k, &leaves[k..], out);
        out.push(root(&leaves[..k]));
    }
}

/// PROOF(m, D[n]): that the tree of size `m` is a prefix of the tree of
/// `leaves.len()`. Defined for 0 < m ≤ n; empty when m == n.
pub fn consistency_proof(m: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if m == 0 || m > leaves.len() {
        return None;
    }
    let mut out = Vec::new();
    subproof(m, leaves, true, &mut out);
    Some(out)
}

fn subproof(m: usize, leaves: &[Hash], whole: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !whole {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], whole, out);
        out.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, out);
        out.push(root(&leaves[..k]));
    }
}

/// RFC 9162 §2.1.3.2.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// RFC 9162 §2.1.4.2. Sizes equal: the proof must be empty and the roots equal.
pub fn verify_consistency(first: u64, second: u64, first_root: &Hash, second_root: &Hash, proof: &[Hash]) -> bool {
    if first == 0 || first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (first - 1, second - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut fr = path[0];
    let mut sr = path[0];
    for c in &path[1..] {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    fr == *first_root && sr == *second_root && snode == 0
}

/// A complete subtree: `2^level` leaves starting at leaf `index << level`.
/// A store that keeps the hash of every complete subtree can answer any
/// proof from O(log n) of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u32,
    pub index: u64,
}

/// The complete subtrees that make up the leaf range `[start, end)`, left to
/// right, for a range that starts aligned to its own largest subtree (every
/// range a proof needs is). Its hash is the right fold
/// `node(n0, node(n1, … node(nk-1, nk)))`, as [`Frontier::root`] computes.
pub fn range_nodes(start: u64, end: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let mut level = 63 - (end - at).leading_zeros();
        while !at.is_multiple_of(1u64 << level) {
            level -= 1;
        }
        out.push(NodeId {
            level,
            index: at >> level,
        });
        at += 1u64 << level;
    }
    out
}

/// Folds the hashes of [`range_nodes`] into the range's hash.
pub fn fold_range(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc)))
}

/// For each element of `PATH(index, D[size])`, the subtrees composing it.
pub fn inclusion_nodes(index: u64, size: u64) -> Option<Vec<Vec<NodeId>>> {
    if index >= size {
        return None;
    }
    let mut out = Vec::new();
    path_nodes(index, 0, size, &mut out);
    Some(out)
}

fn path_nodes(m: u64, start: u64, end: u64, out: &mut Vec<Vec<NodeId>>) {
    let n = end - start;
    if n <= 1 {
        return;
    }
    let k = split(n as usize) as u64;
    if m < k {
        path_nodes(m, start, start + k, out);
        out.push(range_nodes(start + k, end));
    } else {
        path_nodes(m - k, start + k, end, out);
        out.push(range_nodes(start, start + k));
    }
}

/// For each element of `PROOF(first, D[size])`, the subtrees composing it.
pub fn consistency_nodes(first: u64, size: u64) -> Option<Vec<Vec<NodeId>>> {
    if first == 0 || first > size {
        return None;
    }
    let mut out = Vec::new();
    subproof_nodes(first, 0, size, true, &mut out);
    Some(out)
}

fn subproof_nodes(m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<Vec<NodeId>>) {
    let n = end - start;
    if m == n {
        if !whole {
            out.push(range_nodes(start, end));
        }
        return;
    }
    let k = split(n as usize) as u64;
    if m <= k {
        subproof_nodes(m, start, start + k, whole, out);
        out.push(range_nodes(start + k, end));
    } else {
        subproof_nodes(m - k, start + k, end, false, out);
        out.push(range_nodes(start, start + k));
    }
}

/// The right edge of a growing tree: the roots of its complete subtrees,
/// largest first. O(log n) state, enough to append and to compute the root,
/// so the writer never re-reads old leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    peaks: Vec<Hash>,
}

impl Frontier {
    /// The frontier of a tree of `size` leaves from its peaks, largest first
    /// (the hashes of `range_nodes(0, size)`); None when the count is wrong.
    pub fn from_peaks(size: u64, peaks: Vec<Hash>) -> Option<Self> {
        (peaks.len() == size.count_ones() as usize).then_some(Self { size, peaks })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of the complete subtrees, largest first; their ids are
    /// `range_nodes(0, size)`.
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Appends a leaf hash. Returns the complete subtrees this append
    /// finished (the leaf itself, then each merge), which a store keeps so
    /// that proofs need O(log n) reads.
    pub fn push(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        let index = self.size;
        let mut done = vec![(NodeId { level: 0, index }, leaf)];
        let mut carry = leaf;
        let mut size = self.size;
        let mut level = 0;
        // Each trailing one bit of the old size is a peak that now merges.
        while size & 1 == 1 {
            let left = self.peaks.pop().expect("a peak per one bit of the size");
            carry = node_hash(&left, &carry);
            size >>= 1;
            level += 1;
            done.push((
                NodeId {
                    level,
                    index: index >> level,
                },
                carry,
            ));
        }
        self.peaks.push(carry);
        self.size += 1;
        done
    }

    /// The root of the tree so far.
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(last) = peaks.next() else {
            return empty_root();
        };
        peaks.fold(*last, |acc, p| node_hash(p, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Leaves `[0]`, `[1,1]`, `[2,2,2]`, …: entry i is i+1 bytes of value i.
    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&vec![i as u8; i + 1])).collect()
    }

    fn hex(h: &Hash) -> String {
        h.to_hex().to_string()
    }

    /// Vectors computed by an independent implementation (Python, the
    /// `blake3` package, RFC 9162's recursive definitions).
    #[test]
    fn known_answers() {
        assert_eq!(
            hex(&empty_root()),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert_eq!(
            hex(&leaves(1)[0]),
            "1ad48f49627079d806b802c74f40c39d55fe1d78b3faf0f8017aec62cec42122"
        );
        let expected = [
            (1, "1ad48f49627079d806b802c74f40c39d55fe1d78b3faf0f8017aec62cec42122"),
            (2, "e6f28beb36c0313abf6a323773b0345e7bcac67ac8a1a6adfda5a5f911b2b2f3"),
            (3, "d0ee0dfa4c9ca7ed89e2f7d8234a01374cb81519c2abb34a5456be11ab687aaa"),
            (5, "32b67c313a168da713350c08c356c97d3b9eaae0dbc921f3ff50e9298058a153"),
            (7, "d1c6491076f2c6ea453b90de4f62a1a73e98f670920746a048836fd4404b5a2b"),
        ];
        for (n, root_hex) in expected {
            assert_eq!(hex(&root(&leaves(n))), root_hex, "root of {n}");
        }
        let l = leaves(7);
        let incl: Vec<String> = inclusion_proof(2, &l).unwrap().iter().map(hex).collect();
        assert_eq!(
            incl,
            [
                "792c57186d560c65e4c2b279ffc42b6711932192f3eafc973c4815213c197e82",
                "e6f28beb36c0313abf6a323773b0345e7bcac67ac8a1a6adfda5a5f911b2b2f3",
                "e4030cd8f4a444ac5489e5cceb39199df3688baf90a0c367f7343a3be2446952",
            ]
        );
        let cons: Vec<String> = consistency_proof(3, &l).unwrap().iter().map(hex).collect();
        assert_eq!(
            cons,
            [
                "cc1a06bbb2c73093887b20f55bbf3ea17d111a0d7f07523bdb603ba57c90d410",
                "792c57186d560c65e4c2b279ffc42b6711932192f3eafc973c4815213c197e82",
                "e6f28beb36c0313abf6a323773b0345e7bcac67ac8a1a6adfda5a5f911b2b2f3",
                "e4030cd8f4a444ac5489e5cceb39199df3688baf90a0c367f7343a3be2446952",
            ]
        );
    }

    fn subtree(all: &[Hash], id: NodeId) -> Hash {
        let start = (id.index << id.level) as usize;
        root(&all[start..start + (1usize << id.level)])
    }

    fn resolve(all: &[Hash], plan: Vec<Vec<NodeId>>) -> Vec<Hash> {
        plan.into_iter()
            .map(|ids| fold_range(&ids.into_iter().map(|id| subtree(all, id)).collect::<Vec<_>>()).unwrap())
            .collect()
    }

    /// Proofs assembled from stored complete subtrees equal the reference
    /// proofs, and need O(log n) subtrees each.
    #[test]
    fn proofs_from_complete_subtrees_equal_the_reference() {
        let all = leaves(40);
        for n in 1..=all.len() {
            for i in 0..n {
                let plan = inclusion_nodes(i as u64, n as u64).unwrap();
                let reads: usize = plan.iter().map(Vec::len).sum();
                assert!(
                    reads <= 2 * (usize::BITS - n.leading_zeros()) as usize,
                    "{reads} reads for {i} in {n}"
                );
                assert_eq!(
                    resolve(&all, plan),
                    inclusion_proof(i, &all[..n]).unwrap(),
                    "{i} in {n}"
                );
            }
            for m in 1..=n {
                let plan = consistency_nodes(m as u64, n as u64).unwrap();
                assert_eq!(
                    resolve(&all, plan),
                    consistency_proof(m, &all[..n]).unwrap(),
                    "{m} to {n}"
                );
            }
        }
        assert_eq!(
            range_nodes(8, 13),
            vec![NodeId { level: 2, index: 2 }, NodeId { level: 0, index: 12 }]
        );
        assert!(inclusion_nodes(3, 3).is_none());
    }

    #[test]
    fn frontier_root_matches_the_recursive_root_at_every_size() {
        let all = leaves(130);
        let mut f = Frontier::default();
        assert_eq!(f.root(), empty_root());
        for (i, l) in all.iter().enumerate() {
            for (id, hash) in f.push(*l) {
                assert_eq!(hash, subtree(&all, id), "subtree {id:?} finished by leaf {i}");
                assert_eq!(
                    (id.index + 1) << id.level,
                    i as u64 + 1,
                    "finished exactly at its last leaf"
                );
            }
            assert_eq!(f.size(), i as u64 + 1);
            assert_eq!(f.root(), root(&all[..=i]), "size {}", i + 1);
            // The peaks are the subtrees range_nodes(0, size) names, and
            // rebuild the same frontier.
            let ids = range_nodes(0, f.size());
            let expect: Vec<Hash> = ids.iter().map(|id| subtree(&all, *id)).collect();
            assert_eq!(f.peaks(), &expect[..]);
            assert_eq!(Frontier::from_peaks(f.size(), expect.clone()), Some(f.clone()));
            assert_eq!(Frontier::from_peaks(f.size() * 2 + 1, expect), None);
        }
    }

    #[test]
    fn every_inclusion_proof_verifies_and_no_altered_one_does() {
        let all = leaves(33);
        for n in 1..=all.len() {
            let r = root(&all[..n]);
            for i in 0..n {
                let proof = inclusion_proof(i, &all[..n]).unwrap();
                assert!(verify_inclusion(i as u64, n as u64, &all[i], &proof, &r), "{i} in {n}");
                // Wrong leaf, wrong index, wrong size, altered path: all fail.
                let other = all[(i + 1) % n];
                if n > 1 {
                    assert!(!verify_inclusion(i as u64, n as u64, &other, &proof, &r));
                    assert!(!verify_inclusion(((i + 1) % n) as u64, n as u64, &all[i], &proof, &r) || proof.is_empty());
                }
                // A proof for this tree says nothing about the next one.
                if n < all.len() {
                    let next = root(&all[..=n]);
                    assert!(
                        !verify_inclusion(i as u64, n as u64 + 1, &all[i], &proof, &next),
                        "{i} in {n}"
                    );
                }
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0] = leaf_hash(first.as_bytes());
                    assert!(!verify_inclusion(i as u64, n as u64, &all[i], &bad, &r));
                }
            }
            assert!(inclusion_proof(n, &all[..n]).is_none());
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_no_altered_one_does() {
        let all = leaves(33);
        for n in 1..=all.len() {
            let rn = root(&all[..n]);
            for m in 1..=n {
                let rm = root(&all[..m]);
                let proof = consistency_proof(m, &all[..n]).unwrap();
                assert!(verify_consistency(m as u64, n as u64, &rm, &rn, &proof), "{m} to {n}");
                if m < n {
                    // A forked first tree is detected.
                    let forked = leaf_hash(b"fork");
                    assert!(!verify_consistency(m as u64, n as u64, &forked, &rn, &proof));
                    assert!(!verify_consistency(m as u64, n as u64, &rm, &forked, &proof));
                    let mut bad = proof.clone();
                    let last = bad.len() - 1;
                    bad[last] = leaf_hash(b"x");
                    assert!(!verify_consistency(m as u64, n as u64, &rm, &rn, &bad));
                }
            }
        }
        assert!(consistency_proof(0, &all).is_none());
        assert!(!verify_consistency(0, 3, &empty_root(), &root(&all[..3]), &[]));
    }
}
