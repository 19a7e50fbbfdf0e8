/*
 * Offline verification of Warden's evidence, in the browser: export files
 * and receipts, checked against the verifier keys the auditor trusts and
 * nothing else. Nothing here talks to a server or touches the page.
 *
 * Written from the public specifications:
 *
 * - docs/ledger-format.md, Warden's evidence ledger format: entries and their
 *   canonical bytes, the hash chain, the Merkle tree, checkpoints, receipts,
 *   key rotation and the export file;
 * - the BLAKE3 specification (O'Connor, Aumasson, Neves, Wilcox-O'Hearn):
 *   the hash, plain mode with a 32-byte output;
 * - RFC 9162 section 2.1: the Merkle tree, inclusion proofs (2.1.3.2) and
 *   consistency proofs (2.1.4.2);
 * - C2SP signed-note and tlog-checkpoint: checkpoints, their Ed25519
 *   signatures and verifier keys;
 * - RFC 8785 (JCS) with the ledger's one difference (integers are written
 *   exactly): canonical JSON.
 *
 * Ed25519 signatures and SHA-256 (key ids) use the browser's Web Crypto API,
 * which a page has only in a secure context (HTTPS, or localhost).
 *
 * It makes the same checks as the project's Python verifier (warden.verify)
 * and fails the same way: a VerificationError whose message names the entry
 * index and the file's line at fault, also given as `index` and `line`.
 * Reports use the Python reports' member names (as the API's JSON does).
 */

// ---------------------------------------------------------------------------
// Errors

/** Verification failed: `reason` says what, `index` is the ledger index of
 * the entry at fault and `line` the export's line (from 1), each null when
 * there is none. */
export class VerificationError extends Error {
  constructor(reason, { index = null, line = null } = {}) {
    const where = [];
    if (index !== null) where.push(`entry ${index}`);
    if (line !== null) where.push(index !== null ? `(line ${line})` : `line ${line}`);
    super(where.length ? `${where.join(' ')}: ${reason}` : reason);
    this.name = 'VerificationError';
    this.reason = reason;
    this.index = index;
    this.line = line;
  }
}

/** A JSON document the strict reader refuses: Warden's refusal `code`
 * (`malformed_json`, `number_out_of_range`, `duplicate_member`, ...) and
 * the JSON Pointer of the fault (`""` for the whole document). */
export class CanonicalError extends Error {
  constructor(code, pointer, detail) {
    super(`${code} at ${pointer || '(document)'}: ${detail}`);
    this.name = 'CanonicalError';
    this.code = code;
    this.pointer = pointer;
    this.detail = detail;
  }
}

/** A Merkle proof that does not verify. */
export class ProofError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ProofError';
  }
}

/** A malformed key, note or checkpoint (reported as a VerificationError). */
class NoteError extends Error {}

// ---------------------------------------------------------------------------
// Bytes: hex, base64, UTF-8

const HEX_DIGITS = '0123456789abcdef';
const HEX32 = /^[0-9a-f]{64}$/;

/** Lower-case hex of a byte array. */
export function toHex(bytes) {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += HEX_DIGITS[bytes[i] >> 4] + HEX_DIGITS[bytes[i] & 15];
  return out;
}

/** The bytes of a hex text (either case); throws on anything else. */
export function fromHex(text) {
  if (typeof text !== 'string' || text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new TypeError('not an even number of hex digits');
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Standard base64 with padding, strictly (no whitespace, no other
 * alphabet, length a multiple of 4); null when the text is not that. */
function decodeBase64(text) {
  if (text.length % 4 !== 0) return null;
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    let n = 0;
    for (let j = 0; j < 4; j++) {
      const last = i + 4 === text.length;
      const ch = text[i + j];
      let v;
      if (ch === '=' && last && j >= 4 - pad) v = 0;
      else if ((v = BASE64.indexOf(ch)) < 0) return null;
      n = (n << 6) | v;
    }
    for (const shift of [16, 8, 0]) if (o < out.length) out[o++] = (n >> shift) & 255;
  }
  return out;
}

const UTF8 = new TextEncoder();
// fatal: invalid UTF-8 is an error, not U+FFFD; ignoreBOM: a BOM is kept,
// so decoding is one-to-one and decoded texts compare as their bytes do.
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function concatBytes(...parts) {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function asBytes(input, what) {
  if (typeof input === 'string') return UTF8.encode(input);
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  throw new TypeError(`${what} is a string, a Uint8Array or an ArrayBuffer`);
}

// ---------------------------------------------------------------------------
// BLAKE3 (plain hashing, 32-byte output)
//
// The input is split into 1024-byte chunks, each hashed in 64-byte blocks
// chained through the compression function; the chunks' chaining values are
// then combined pairwise into a binary tree, the left subtree always holding
// the largest power of two of chunks. The last compression (of the single
// chunk, or of the topmost parent) carries the ROOT flag and gives the hash.

const IV = new Uint32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);
const CHUNK_START = 1;
const CHUNK_END = 2;
const PARENT = 4;
const ROOT = 8;
const BLOCK_LEN = 64;
const CHUNK_LEN = 1024;

// The message words each of the 7 rounds reads, in order: round 0 reads them
// as they are; each later round applies the specification's permutation to
// the previous round's order.
const MSG_PERMUTATION = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
const SCHEDULE = (() => {
  const rounds = new Uint8Array(7 * 16);
  let order = Array.from({ length: 16 }, (_, i) => i);
  for (let r = 0; r < 7; r++) {
    rounds.set(order, r * 16);
    order = MSG_PERMUTATION.map((i) => order[i]);
  }
  return rounds;
})();

const rotr = (x, n) => (x >>> n) | (x << (32 - n));

// The quarter-round on state words a, b, c, d with message words x, y.
// The state is a Uint32Array, so each store wraps modulo 2^32.
function g(v, a, b, c, d, x, y) {
  v[a] = v[a] + v[b] + x;
  v[d] = rotr(v[d] ^ v[a], 16);
  v[c] = v[c] + v[d];
  v[b] = rotr(v[b] ^ v[c], 12);
  v[a] = v[a] + v[b] + y;
  v[d] = rotr(v[d] ^ v[a], 8);
  v[c] = v[c] + v[d];
  v[b] = rotr(v[b] ^ v[c], 7);
}

const state = new Uint32Array(16);

/** The compression function; writes the first 8 output words (all that a
 * chaining value or a 32-byte root output needs) to `out`. */
function compress(cv, m, counter, blockLen, flags, out) {
  const v = state;
  v.set(cv, 0);
  v.set(IV.subarray(0, 4), 8);
  v[12] = counter >>> 0;
  v[13] = Math.floor(counter / 0x100000000) >>> 0;
  v[14] = blockLen;
  v[15] = flags;
  for (let r = 0; r < 7 * 16; r += 16) {
    const s = SCHEDULE;
    g(v, 0, 4, 8, 12, m[s[r]], m[s[r + 1]]); // columns
    g(v, 1, 5, 9, 13, m[s[r + 2]], m[s[r + 3]]);
    g(v, 2, 6, 10, 14, m[s[r + 4]], m[s[r + 5]]);
    g(v, 3, 7, 11, 15, m[s[r + 6]], m[s[r + 7]]);
    g(v, 0, 5, 10, 15, m[s[r + 8]], m[s[r + 9]]); // diagonals
    g(v, 1, 6, 11, 12, m[s[r + 10]], m[s[r + 11]]);
    g(v, 2, 7, 8, 13, m[s[r + 12]], m[s[r + 13]]);
    g(v, 3, 4, 9, 14, m[s[r + 14]], m[s[r + 15]]);
  }
  for (let i = 0; i < 8; i++) out[i] = v[i] ^ v[i + 8];
}

/** Loads `len` (<= 64) bytes as 16 little-endian words, zero-padded. */
function loadBlock(bytes, start, len, m) {
  if (len === BLOCK_LEN) {
    for (let i = 0, p = start; i < 16; i++, p += 4) {
      m[i] = bytes[p] | (bytes[p + 1] << 8) | (bytes[p + 2] << 16) | (bytes[p + 3] << 24);
    }
    return;
  }
  m.fill(0);
  for (let i = 0; i < len; i++) m[i >> 2] |= bytes[start + i] << (8 * (i & 3));
}

// A node's last compression, not yet done: whether it gives a chaining value
// or the root output depends on whether the node is the root.
function chunkOutput(bytes, start, end, chunkCounter) {
  const cv = IV.slice();
  const m = new Uint32Array(16);
  let flags = CHUNK_START;
  let pos = start;
  while (end - pos > BLOCK_LEN) {
    loadBlock(bytes, pos, BLOCK_LEN, m);
    compress(cv, m, chunkCounter, BLOCK_LEN, flags, cv);
    flags = 0;
    pos += BLOCK_LEN;
  }
  loadBlock(bytes, pos, end - pos, m); // an empty input is one empty block
  return { cv, m, counter: chunkCounter, blockLen: end - pos, flags: flags | CHUNK_END };
}

function parentOutput(left, right) {
  const m = new Uint32Array(16);
  m.set(left, 0);
  m.set(right, 8);
  return { cv: IV, m, counter: 0, blockLen: BLOCK_LEN, flags: PARENT };
}

function chainingValue(node) {
  const out = new Uint32Array(8);
  compress(node.cv, node.m, node.counter, node.blockLen, node.flags, out);
  return out;
}

/** BLAKE3 of `bytes` (a Uint8Array, or a string hashed as UTF-8):
 * a Uint8Array of 32 bytes. */
export function blake3(bytes) {
  const input = asBytes(bytes, 'the input');
  const chunks = Math.max(1, Math.ceil(input.length / CHUNK_LEN));
  // Chaining values of complete subtrees, as the specification's hasher
  // keeps them: after chunk n (counting from 1), as many merges as n has
  // trailing zero bits. The last chunk is kept apart: it may be the root.
  const stack = [];
  for (let c = 0; c < chunks - 1; c++) {
    let cv = chainingValue(chunkOutput(input, c * CHUNK_LEN, (c + 1) * CHUNK_LEN, c));
    for (let total = c + 1; total % 2 === 0; total /= 2) cv = chainingValue(parentOutput(stack.pop(), cv));
    stack.push(cv);
  }
  let node = chunkOutput(input, (chunks - 1) * CHUNK_LEN, input.length, chunks - 1);
  while (stack.length) node = parentOutput(stack.pop(), chainingValue(node));
  // The root's first (and here only) output block: counter 0, ROOT set.
  const words = new Uint32Array(8);
  compress(node.cv, node.m, 0, node.blockLen, node.flags | ROOT, words);
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    out[4 * i] = words[i];
    out[4 * i + 1] = words[i] >>> 8;
    out[4 * i + 2] = words[i] >>> 16;
    out[4 * i + 3] = words[i] >>> 24;
  }
  return out;
}

// ---------------------------------------------------------------------------
// The Merkle tree: RFC 9162 section 2.1 with H = BLAKE3
//
// Sizes and indexes are JavaScript numbers (exact below 2^53), so halving
// is done with arithmetic, not with 32-bit shifts.

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);
const isOdd = (n) => n % 2 === 1;
const half = (n) => Math.floor(n / 2);

/** An entry's hash, its leaf in the tree: H(0x00 ‖ bytes). */
export function leafHash(entry) {
  return blake3(concatBytes(LEAF_PREFIX, asBytes(entry, 'an entry')));
}

/** An interior node: H(0x01 ‖ left ‖ right). */
export function nodeHash(left, right) {
  return blake3(concatBytes(NODE_PREFIX, left, right));
}

/** The root of the empty tree: H(""). */
export function emptyRoot() {
  return blake3(new Uint8Array(0));
}

/** The sizes of the complete subtrees making up a tree of n leaves,
 * largest first: one per one bit of n. */
function subtreeSizes(n) {
  const sizes = [];
  let p = 1;
  while (p * 2 <= n) p *= 2;
  for (; p >= 1; p /= 2) if (isOdd(Math.floor(n / p))) sizes.push(p);
  return sizes;
}

/** An append-only tree's complete subtrees (largest first), from which the
 * root of every prefix is computed as leaves are appended. */
export class Frontier {
  constructor(size = 0, hashes = []) {
    const sizes = subtreeSizes(size);
    if (sizes.length !== hashes.length) {
      throw new ProofError(`a frontier for ${size} leaves has ${sizes.length} subtree hashes, not ${hashes.length}`);
    }
    this.size = size;
    this.nodes = sizes.map((s, i) => ({ size: s, hash: hashes[i] }));
  }

  append(leaf) {
    const nodes = this.nodes;
    nodes.push({ size: 1, hash: leaf });
    this.size += 1;
    while (nodes.length >= 2 && nodes[nodes.length - 1].size === nodes[nodes.length - 2].size) {
      const right = nodes.pop();
      const left = nodes.pop();
      nodes.push({ size: left.size * 2, hash: nodeHash(left.hash, right.hash) });
    }
  }

  /** MTH of the leaves so far: the subtrees folded from the right. */
  root() {
    const nodes = this.nodes;
    if (!nodes.length) return emptyRoot();
    let r = nodes[nodes.length - 1].hash;
    for (let i = nodes.length - 2; i >= 0; i--) r = nodeHash(nodes[i].hash, r);
    return r;
  }

  hashes() {
    return this.nodes.map((n) => n.hash);
  }
}

/** MTH(D[n]) of the given leaf hashes. */
export function merkleRoot(leaves) {
  const f = new Frontier();
  for (const leaf of leaves) f.append(leaf);
  return f.root();
}

/** The root that a leaf and its inclusion path yield (RFC 9162 2.1.3.2);
 * throws ProofError when the path cannot belong to a tree of `treeSize`. */
export function rootFromInclusion(index, treeSize, leaf, path) {
  if (!(index >= 0 && index < treeSize)) throw new ProofError(`index ${index} is not below the tree size ${treeSize}`);
  let fn = index;
  let sn = treeSize - 1;
  let r = leaf;
  for (const p of path) {
    if (p.length !== 32) throw new ProofError('a proof hash is not 32 bytes');
    if (sn === 0) throw new ProofError('the inclusion proof is longer than the tree allows');
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      // A right edge: skip the levels where this node has no sibling.
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw new ProofError('the inclusion proof is shorter than the tree needs');
  return r;
}

/** Throws ProofError unless `path` proves `leaf` at `index` under `root`. */
export function verifyInclusion(index, treeSize, leaf, path, root) {
  if (!equalBytes(rootFromInclusion(index, treeSize, leaf, path), root)) {
    throw new ProofError("the inclusion proof does not yield the checkpoint's root");
  }
}

/** RFC 9162 2.1.4.2: throws ProofError unless `proof` shows the tree of
 * size `first` (root `firstRoot`) is a prefix of that of size `second`. */
export function verifyConsistencyProof(first, second, firstRoot, secondRoot, proof) {
  if (first > second) throw new ProofError(`tree size ${first} is larger than ${second}`);
  if (first === second) {
    if (proof.length) throw new ProofError('a proof between equal sizes must be empty');
    if (!equalBytes(firstRoot, secondRoot)) throw new ProofError('equal sizes with different roots');
    return;
  }
  if (first === 0) {
    if (proof.length) throw new ProofError('a proof from the empty tree must be empty');
    return;
  }
  if (!proof.length) throw new ProofError('the consistency proof is empty');
  // When the first tree is a complete subtree its root is not in the proof.
  const path = subtreeSizes(first).length === 1 ? [firstRoot, ...proof] : [...proof];
  let fn = first - 1;
  let sn = second - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (c.length !== 32) throw new ProofError('a proof hash is not 32 bytes');
    if (sn === 0) throw new ProofError('the consistency proof is longer than the trees allow');
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw new ProofError('the consistency proof is shorter than the trees need');
  if (!equalBytes(fr, firstRoot)) throw new ProofError('the consistency proof does not yield the first root');
  if (!equalBytes(sr, secondRoot)) throw new ProofError('the consistency proof does not yield the second root');
}

// ---------------------------------------------------------------------------
// Canonical JSON
//
// The strict reader accepts exactly what Warden accepts. Integers (numbers
// written without fraction or exponent) are read as BigInt, exactly, within
// [-2^63, 2^64 - 1]; every other number as a double. Objects are read into
// objects without a prototype, so any member name (`__proto__` too) is data.

const INT_MIN = -(2n ** 63n);
const INT_MAX = 2n ** 64n - 1n;
const MAX_NUMBER_CHARS = 100;
const RESERVED_NAMES = new Set(['$serde_json::private::Number', '$serde_json::private::RawValue']);
const SIMPLE_ESCAPES = new Map([
  ['"', '"'], ['\\', '\\'], ['/', '/'], ['b', '\b'], ['f', '\f'], ['n', '\n'], ['r', '\r'], ['t', '\t'],
]);
const NUMBER = /-?(0|[1-9][0-9]*)?(\.[0-9]*)?([eE][+-]?[0-9]*)?/y;

/** One reference token of a JSON Pointer (RFC 6901). */
const pointerEscape = (token) => token.replace(/~/g, '~0').replace(/\//g, '~1');

/** False when a string holds a surrogate code unit that is not half of a pair. */
function wellFormed(s) {
  if (!/[\ud800-\udfff]/.test(s)) return true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false;
    }
  }
  return true;
}

class JsonReader {
  constructor(text, maxDepth) {
    this.text = text;
    this.pos = 0;
    this.maxDepth = maxDepth;
  }

  malformed(pointer, what) {
    return new CanonicalError('malformed_json', pointer, `${what} at character ${this.pos}`);
  }

  skipWhitespace() {
    const t = this.text;
    while (this.pos < t.length && ' \t\n\r'.includes(t[this.pos])) this.pos++;
  }

  value(pointer, depth) {
    this.skipWhitespace();
    if (this.pos >= this.text.length) throw this.malformed(pointer, 'unexpected end of the document');
    const ch = this.text[this.pos];
    if (ch === '{') return this.object(pointer, depth + 1);
    if (ch === '[') return this.array(pointer, depth + 1);
    if (ch === '"') return this.string(pointer);
    if (ch === '-' || (ch >= '0' && ch <= '9')) return this.number(pointer);
    for (const [word, value] of [['true', true], ['false', false], ['null', null]]) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return value;
      }
    }
    throw this.malformed(pointer, `unexpected character ${JSON.stringify(ch)}`);
  }

  checkDepth(pointer, depth) {
    if (depth > this.maxDepth) throw new CanonicalError('json_too_deep', pointer, `nested deeper than ${this.maxDepth} levels`);
  }

  // After a member or an element: `close` ends the container, ',' goes on.
  next(pointer, close) {
    this.skipWhitespace();
    if (this.pos >= this.text.length) throw this.malformed(pointer, 'unexpected end of the document');
    const ch = this.text[this.pos];
    if (ch === close || ch === ',') {
      this.pos++;
      return ch === ',';
    }
    throw this.malformed(pointer, `expected ',' or '${close}'`);
  }

  object(pointer, depth) {
    this.checkDepth(pointer, depth);
    this.pos++;
    const result = Object.create(null);
    this.skipWhitespace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return result;
    }
    do {
      this.skipWhitespace();
      if (this.text[this.pos] !== '"') throw this.malformed(pointer, 'expected a member name');
      const name = this.string(pointer);
      const child = `${pointer}/${pointerEscape(name)}`;
      if (Object.prototype.hasOwnProperty.call(result, name)) {
        throw new CanonicalError('duplicate_member', child, `the member ${JSON.stringify(name)} is named twice`);
      }
      if (RESERVED_NAMES.has(name)) {
        throw new CanonicalError('reserved_member_name', child, `the member name ${JSON.stringify(name)} is reserved`);
      }
      this.skipWhitespace();
      if (this.text[this.pos] !== ':') throw this.malformed(child, "expected ':'");
      this.pos++;
      result[name] = this.value(child, depth);
    } while (this.next(pointer, '}'));
    return result;
  }

  array(pointer, depth) {
    this.checkDepth(pointer, depth);
    this.pos++;
    const result = [];
    this.skipWhitespace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return result;
    }
    do {
      result.push(this.value(`${pointer}/${result.length}`, depth));
    } while (this.next(pointer, ']'));
    return result;
  }

  string(pointer) {
    const t = this.text;
    let out = '';
    let start = this.pos + 1;
    for (;;) {
      let end = start;
      while (end < t.length) {
        const c = t.charCodeAt(end);
        if (c === 0x22 || c === 0x5c || c < 0x20) break;
        end++;
      }
      out += t.slice(start, end);
      this.pos = end;
      if (end >= t.length) throw this.malformed(pointer, 'unterminated string');
      const c = t.charCodeAt(end);
      if (c === 0x22) {
        this.pos = end + 1;
        break;
      }
      if (c < 0x20) throw this.malformed(pointer, 'raw control character in a string');
      if (end + 1 >= t.length) throw this.malformed(pointer, 'unterminated escape');
      const esc = t[end + 1];
      if (SIMPLE_ESCAPES.has(esc)) {
        out += SIMPLE_ESCAPES.get(esc);
        start = end + 2;
        continue;
      }
      if (esc !== 'u') throw this.malformed(pointer, `invalid escape \\${esc}`);
      const hex4 = t.slice(end + 2, end + 6);
      if (!/^[0-9a-fA-F]{4}$/.test(hex4)) throw this.malformed(pointer, 'invalid \\u escape');
      out += String.fromCharCode(parseInt(hex4, 16));
      start = end + 6;
    }
    // Escaped surrogates must pair up (\ud83d\ude00); a lone one is no character.
    if (!wellFormed(out)) throw new CanonicalError('invalid_unicode', pointer, 'a lone surrogate escape is not valid Unicode');
    return out;
  }

  number(pointer) {
    NUMBER.lastIndex = this.pos;
    const [literal, int, frac, exp] = NUMBER.exec(this.text);
    this.pos += literal.length;
    if (int === undefined) throw this.malformed(pointer, 'invalid number');
    if (frac === '.') throw this.malformed(pointer, 'a fraction needs digits');
    if (exp !== undefined && !/[0-9]$/.test(exp)) throw this.malformed(pointer, 'an exponent needs digits');
    const digit = this.text[this.pos];
    if (int === '0' && digit >= '0' && digit <= '9') throw this.malformed(pointer, 'a number may not start with 0');
    if (literal.length > MAX_NUMBER_CHARS) {
      throw new CanonicalError('number_too_long', pointer, `a number written with ${literal.length} characters (at most 100)`);
    }
    if (frac === undefined && exp === undefined) {
      const n = BigInt(literal);
      if (n < INT_MIN || n > INT_MAX) {
        throw new CanonicalError('number_out_of_range', pointer, `the integer ${literal} is outside [-2^63, 2^64 - 1]`);
      }
      return n;
    }
    const f = Number(literal);
    if (!Number.isFinite(f)) throw new CanonicalError('number_out_of_range', pointer, `${literal} is beyond a double's range`);
    if (f === 0 && /[1-9]/.test(literal.split(/[eE]/)[0])) {
      throw new CanonicalError('number_out_of_range', pointer, `${literal} is not zero but rounds to zero`);
    }
    return f;
  }
}

function decodeUtf8(bytes) {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    throw new CanonicalError('invalid_unicode', '', 'the bytes are not UTF-8');
  }
}

/** Reads one JSON document strictly (a string, or UTF-8 bytes); throws
 * CanonicalError naming Warden's refusal code and the fault's pointer. */
export function parseJSON(input, maxDepth = 128) {
  const text = typeof input === 'string' ? input : decodeUtf8(asBytes(input, 'a JSON document'));
  const reader = new JsonReader(text, maxDepth);
  const value = reader.value('', 0);
  reader.skipWhitespace();
  if (reader.pos !== text.length) throw reader.malformed('', 'trailing characters after the document');
  return value;
}

/** The canonical JSON text of a value as parseJSON reads it (BigInt for
 * exact integers; a number is a double, written as ECMAScript does). */
export function canonicalJSON(value) {
  const out = [];
  encodeValue(value, '', out);
  return out.join('');
}

function encodeValue(value, pointer, out) {
  if (value === null || value === true || value === false) {
    out.push(String(value));
  } else if (typeof value === 'bigint') {
    if (value < INT_MIN || value > INT_MAX) {
      throw new CanonicalError('number_out_of_range', pointer, `the integer ${value} is outside [-2^63, 2^64 - 1]`);
    }
    out.push(value.toString());
  } else if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new CanonicalError('number_out_of_range', pointer, `${value} is not a finite number`);
    // ECMAScript's Number::toString is RFC 8785's form (and writes -0 as 0).
    out.push(String(value));
  } else if (typeof value === 'string') {
    if (!wellFormed(value)) throw new CanonicalError('invalid_unicode', pointer, 'a lone surrogate is not valid Unicode');
    // RFC 8785 escapes strings exactly as JSON.stringify does.
    out.push(JSON.stringify(value));
  } else if (Array.isArray(value)) {
    out.push('[');
    value.forEach((item, i) => {
      if (i) out.push(',');
      encodeValue(item, `${pointer}/${i}`, out);
    });
    out.push(']');
  } else if (typeof value === 'object') {
    // The default sort compares UTF-16 code units, as RFC 8785 orders names.
    const names = Object.keys(value).sort();
    out.push('{');
    names.forEach((name, i) => {
      if (i) out.push(',');
      const child = `${pointer}/${pointerEscape(name)}`;
      if (!wellFormed(name)) throw new CanonicalError('invalid_unicode', child, 'a lone surrogate is not valid Unicode');
      out.push(JSON.stringify(name), ':');
      encodeValue(value[name], child, out);
    });
    out.push('}');
  } else {
    throw new CanonicalError('invalid_field', pointer, `${typeof value} is not a JSON value`);
  }
}

// ---------------------------------------------------------------------------
// Verifier keys, signed notes and checkpoints (C2SP)

const ALG_ED25519 = 0x01;
const EM_DASH = '\u2014';
// Names hold no whitespace (as Python's str.isspace counts it) and no '+'.
const BAD_NAME_CHAR = /[\s\x1c-\x1f\x85+]/;

const validName = (name) => name.length > 0 && !BAD_NAME_CHAR.test(name);

function subtle() {
  const s = globalThis.crypto && globalThis.crypto.subtle;
  if (!s) {
    throw new Error('this page has no Web Crypto API (crypto.subtle); it is only given to secure contexts: open the console over HTTPS or on localhost');
  }
  return s;
}

/** The key id: the first four bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ key). */
async function keyId(name, publicKey) {
  const data = concatBytes(UTF8.encode(name), Uint8Array.of(0x0a, ALG_ED25519), publicKey);
  return new Uint8Array(await subtle().digest('SHA-256', data)).slice(0, 4);
}

async function parseKeyText(input) {
  if (typeof input !== 'string') throw new NoteError('a verifier key is a text');
  const text = input.trim();
  const [name, hexId, b64] = splitTwice(text, '+');
  if (b64 === undefined) throw new NoteError(`a verifier key is <name>+<hex key id>+<base64 key>, not ${JSON.stringify(text)}`);
  if (!validName(name)) throw new NoteError(`invalid key name ${JSON.stringify(name)}`);
  if (!/^[0-9a-f]{8}$/.test(hexId)) throw new NoteError(`the key id ${JSON.stringify(hexId)} is not 8 lower-case hex digits`);
  const raw = decodeBase64(b64);
  if (raw === null) throw new NoteError('the key is not standard base64');
  if (raw.length !== 33 || raw[0] !== ALG_ED25519) throw new NoteError('the key is not an Ed25519 key (0x01 and 32 bytes)');
  const publicKey = raw.slice(1);
  const id = toHex(await keyId(name, publicKey));
  if (id !== hexId) throw new NoteError(`the key id ${hexId} does not match the key (expected ${id})`);
  return Object.freeze({ text, name, keyId: id, publicKey });
}

// "a+b+c+d" -> ["a", "b", "c+d"] (base64 holds '+'); missing parts are undefined.
function splitTwice(text, sep) {
  const i = text.indexOf(sep);
  if (i < 0) return [text];
  const j = text.indexOf(sep, i + 1);
  if (j < 0) return [text.slice(0, i), text.slice(i + 1)];
  return [text.slice(0, i), text.slice(i + 1, j), text.slice(j + 1)];
}

/** Parses a verifier key `<name>+<hex key id>+<base64(0x01 ‖ key)>`.
 * Resolves to `{text, name, keyId, publicKey}` (keyId in hex, publicKey
 * 32 bytes); rejects with a VerificationError when it is malformed or its
 * key id does not match. */
export async function parseKey(text) {
  try {
    return await parseKeyText(text);
  } catch (e) {
    if (e instanceof NoteError) throw new VerificationError(`invalid verifier key: ${e.message}`);
    throw e;
  }
}

/** The trusted keys, from one key or an array of them: verifier key texts,
 * parsed keys, or objects with a `verifier` text (as GET /v1/ledger/keys
 * lists them). */
async function parseKeys(keys) {
  const items = Array.isArray(keys) ? keys : [keys];
  const out = [];
  for (const k of items) {
    let key;
    if (k && typeof k === 'object' && typeof k.text === 'string' && k.publicKey instanceof Uint8Array) key = k;
    else if (k && typeof k === 'object' && typeof k.verifier === 'string') key = await parseKey(k.verifier);
    else if (typeof k === 'string') key = await parseKey(k);
    else throw new TypeError('a key is a verifier key text, a parsed key or an object with "verifier"');
    if (!out.some((o) => o.text === key.text)) out.push(key);
  }
  if (!out.length) throw new VerificationError('no trusted key given');
  return out;
}

const uniqueKeys = (keys) => keys.filter((k, i) => keys.findIndex((o) => o.text === k.text) === i);
const describeKey = (k) => `${k.name}+${k.keyId}`;
const describeKeys = (keys) => (keys.length ? keys.map(describeKey).join(', ') : 'no known key');

/** Splits a signed note into its body and its signature lines. */
function parseNote(text) {
  if (!text.endsWith('\n')) throw new NoteError('a signed note ends with a newline');
  const at = text.indexOf('\n\n');
  if (at < 0) throw new NoteError('a signed note has an empty line between its body and its signatures');
  const body = text.slice(0, at + 1);
  const lines = text.slice(at + 2).split('\n');
  if (lines.pop() !== '') throw new NoteError('a signed note ends with a newline');
  const signatures = lines.map((line) => {
    if (!line.startsWith(EM_DASH + ' ')) throw new NoteError(`a signature line starts with an em dash and a space: ${JSON.stringify(line)}`);
    const parts = line.slice(2).split(' ');
    if (parts.length !== 2 || !validName(parts[0])) throw new NoteError(`a signature line is '— <name> <base64>': ${JSON.stringify(line)}`);
    const raw = decodeBase64(parts[1]);
    if (raw === null) throw new NoteError(`a signature is not standard base64: ${JSON.stringify(line)}`);
    if (raw.length < 5) throw new NoteError(`a signature is too short: ${JSON.stringify(line)}`);
    return { name: parts[0], keyId: toHex(raw.subarray(0, 4)), signature: raw.slice(4) };
  });
  if (!signatures.length) throw new NoteError('a signed note has at least one signature');
  return { body, signatures };
}

function parseCheckpointText(text) {
  const note = parseNote(text);
  const lines = note.body.split('\n').slice(0, -1); // extension lines may follow the root
  if (lines.length < 3) throw new NoteError('a checkpoint body has an origin, a tree size and a root');
  const [origin, sizeText, rootText] = lines;
  if (!origin) throw new NoteError("a checkpoint's origin is empty");
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) throw new NoteError(`a checkpoint's tree size is a decimal number, not ${JSON.stringify(sizeText)}`);
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw new NoteError(`a checkpoint's tree size ${sizeText} is beyond what this verifier counts (2^53)`);
  const root = decodeBase64(rootText);
  if (root === null) throw new NoteError("a checkpoint's root is not standard base64");
  if (root.length !== 32) throw new NoteError("a checkpoint's root is not 32 bytes");
  return { origin, size, root, note, text };
}

/** Parses a checkpoint (a signed note) without checking its signatures:
 * `{origin, size, root (32 bytes), note: {body, signatures}, text}`. */
export function parseCheckpoint(text) {
  try {
    return parseCheckpointText(text);
  } catch (e) {
    if (e instanceof NoteError) throw new VerificationError(`malformed checkpoint: ${e.message}`);
    throw e;
  }
}

const importedKeys = new WeakMap();

/** Ed25519 verification with Web Crypto. False for a bad signature or a
 * public key that is no curve point; throws when the browser has no Ed25519. */
async function ed25519Verify(key, message, signature) {
  if (!importedKeys.has(key)) {
    importedKeys.set(key, subtle().importKey('raw', key.publicKey, { name: 'Ed25519' }, false, ['verify']));
  }
  let cryptoKey;
  try {
    cryptoKey = await importedKeys.get(key);
  } catch (e) {
    if (e && e.name === 'NotSupportedError') throw new Error('this browser cannot verify Ed25519 signatures (Web Crypto has no Ed25519)');
    return false;
  }
  try {
    return await subtle().verify('Ed25519', cryptoKey, signature, message);
  } catch {
    return false;
  }
}

/** The keys among `keys` (in their order) whose signature on the note
 * verifies. Signature lines of other keys are ignored (C2SP). */
async function signedBy(note, keys) {
  const message = UTF8.encode(note.body);
  const good = [];
  for (const key of keys) {
    for (const sig of note.signatures) {
      if (sig.name === key.name && sig.keyId === key.keyId && (await ed25519Verify(key, message, sig.signature))) {
        good.push(key);
        break;
      }
    }
  }
  return good;
}

const signatureNames = (note) => note.signatures.map((s) => `${s.name} (${s.keyId})`).join(', ');

/** Parses a checkpoint and checks that a trusted key signed it (and, when
 * given, that it names `origin`). Resolves to the parsed checkpoint. */
export async function verifyCheckpoint(text, keys, origin = null) {
  const trusted = await parseKeys(keys);
  const cp = parseCheckpoint(text);
  if (origin !== null && cp.origin !== origin) {
    throw new VerificationError(`the checkpoint is of log ${JSON.stringify(cp.origin)}, not ${JSON.stringify(origin)}`);
  }
  if (!(await signedBy(cp.note, trusted)).length) {
    throw new VerificationError(`no trusted key signed the checkpoint of size ${cp.size} (signed by: ${signatureNames(cp.note)})`);
  }
  return cp;
}

// ---------------------------------------------------------------------------
// Shared checks

const EXPORT_FORMAT = 'warden-ledger-export/1';
const ENTRY_MAX_DEPTH = 101; // a payload nests at most 100 levels; the entry adds one
const ENTRY_MEMBERS = ['actor', 'index', 'kind', 'payload', 'prev', 'ts'];
const ROTATE_KIND = 'ledger.key.rotate';
const ZERO_HASH = '0'.repeat(64);

/** A JSON value as text, for messages (BigInt too). */
const show = (v) => JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x)) ?? 'nothing';
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const has = (obj, name) => Object.prototype.hasOwnProperty.call(obj, name);

function hex32(value, what, index = null, line = null) {
  if (typeof value !== 'string' || !HEX32.test(value)) {
    throw new VerificationError(`${what} is not 64 lower-case hex digits`, { index, line });
  }
  return fromHex(value);
}

/** A non-negative integer (a BigInt from parseJSON, or a number from
 * JSON.parse) as a number; this verifier counts up to 2^53. */
function nonNegative(value, what, index = null, line = null) {
  const n = typeof value === 'bigint' && value >= 0n && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new VerificationError(`${what} is not a non-negative integer`, { index, line });
  }
  return n;
}

/** Parses an entry's bytes and checks they are exactly canonical. */
function checkEntryBytes(bytes, index, line) {
  let obj;
  let text;
  try {
    text = decodeUtf8(bytes);
    obj = parseJSON(text, ENTRY_MAX_DEPTH);
  } catch (e) {
    if (!(e instanceof CanonicalError)) throw e;
    if (e.code === 'json_too_deep') {
      throw new VerificationError('the entry is too deep (a payload nests at most 100 levels)', { index, line });
    }
    throw new VerificationError(`the entry is refused: ${e.message}`, { index, line });
  }
  if (!isObject(obj)) throw new VerificationError('the entry is not a JSON object', { index, line });
  const names = Object.keys(obj);
  const missing = ENTRY_MEMBERS.filter((m) => !has(obj, m));
  const extra = names.filter((m) => !ENTRY_MEMBERS.includes(m)).sort();
  if (missing.length || extra.length) {
    throw new VerificationError(
      `the entry's members are wrong (missing ${JSON.stringify(missing)}, unexpected ${JSON.stringify(extra)})`,
      { index, line },
    );
  }
  let again;
  try {
    again = canonicalJSON(obj);
  } catch (e) {
    throw new VerificationError(`the entry cannot be encoded canonically: ${e.message}`, { index, line });
  }
  // The decoding is one-to-one, so equal texts are equal bytes.
  if (again !== text) {
    throw new VerificationError("the entry's bytes are not the canonical encoding of what they hold", { index, line });
  }
  nonNegative(obj.index, "the entry's index", index, line);
  nonNegative(obj.ts, "the entry's ts", index, line);
  if (typeof obj.kind !== 'string' || typeof obj.actor !== 'string') {
    throw new VerificationError("the entry's kind and actor are strings", { index, line });
  }
  hex32(obj.prev, "the entry's prev", index, line);
  return obj;
}

// ---------------------------------------------------------------------------
// Receipts

/**
 * Verifies a receipt offline: its checkpoint is signed by a trusted key and
 * names the receipt's log and tree size, and `entry_hash` with `inclusion`
 * yields the checkpoint's root (RFC 9162 2.1.3.2).
 *
 * `receipt` is the receipt object, or any answer carrying one in `receipt`
 * (a decision, an audit event), parsed (or as JSON text). Given `entry`,
 * the entry's exact bytes (a string or a Uint8Array, e.g. the `bytes` of
 * GET /v1/ledger/entries/{index}), also checks they are canonical, name the
 * receipt's index, hash to `entry_hash` and record the answer's decision.
 *
 * Resolves to {log, index, tree_size, entry_hash, root, signed_by,
 * entry_checked}; rejects with a VerificationError.
 */
export async function verifyReceipt(receipt, keys, entry = null) {
  const trusted = await parseKeys(keys);
  let answer = receipt;
  if (typeof answer === 'string') {
    try {
      answer = JSON.parse(answer);
    } catch {
      throw new VerificationError('the receipt is not JSON');
    }
  }
  if (!isObject(answer)) throw new VerificationError('the receipt is not an object');
  let r = answer;
  if (has(answer, 'receipt')) {
    r = answer.receipt;
    if (r === null || r === undefined) throw new VerificationError('the answer carries no receipt');
  }
  if (!isObject(r)) throw new VerificationError('the receipt is not an object');
  const rawIndex = Number.isInteger(r.index) ? r.index : null;
  const index = nonNegative(r.index, "the receipt's index", rawIndex);
  const at = { index };
  if (typeof r.log !== 'string' || !r.log) throw new VerificationError('the receipt names no log', at);
  const treeSize = nonNegative(r.tree_size, "the receipt's tree_size", index);
  const leaf = hex32(r.entry_hash, "the receipt's entry_hash", index);
  if (!Array.isArray(r.inclusion)) throw new VerificationError("the receipt's inclusion is not a list", at);
  const path = r.inclusion.map((h, i) => hex32(h, `inclusion hash ${i}`, index));
  if (typeof r.checkpoint !== 'string') throw new VerificationError('the receipt carries no checkpoint', at);
  let cp;
  try {
    cp = parseCheckpointText(r.checkpoint);
  } catch (e) {
    if (e instanceof NoteError) throw new VerificationError(`malformed checkpoint: ${e.message}`, at);
    throw e;
  }
  if (cp.origin !== r.log) {
    throw new VerificationError(`the checkpoint is of log ${JSON.stringify(cp.origin)}, the receipt of ${JSON.stringify(r.log)}`, at);
  }
  if (cp.size !== treeSize) {
    throw new VerificationError(`the checkpoint is of tree size ${cp.size}, the receipt says ${treeSize}`, at);
  }
  const signers = await signedBy(cp.note, trusted);
  if (!signers.length) {
    throw new VerificationError(`no trusted key signed the receipt's checkpoint (signed by: ${signatureNames(cp.note)})`, at);
  }
  try {
    verifyInclusion(index, treeSize, leaf, path, cp.root);
  } catch (e) {
    if (e instanceof ProofError) throw new VerificationError(`inclusion proof: ${e.message}`, at);
    throw e;
  }
  let checked = false;
  if (entry !== null && entry !== undefined) {
    let bytes = asBytes(entry, 'the entry');
    if (bytes.length && bytes[bytes.length - 1] === 0x0a) bytes = bytes.subarray(0, bytes.length - 1);
    const obj = checkEntryBytes(bytes, index, null);
    if (obj.index !== BigInt(index)) throw new VerificationError(`the entry is entry ${obj.index}, the receipt is of ${index}`, at);
    if (!equalBytes(leafHash(bytes), leaf)) throw new VerificationError("the entry's bytes do not hash to the receipt's entry_hash", at);
    const decisionId = answer.decision_id;
    const payload = obj.payload;
    if (typeof decisionId === 'string' && isObject(payload) && has(payload, 'decision_id') && payload.decision_id !== decisionId) {
      throw new VerificationError(`the entry records decision ${payload.decision_id}, not ${decisionId}`, at);
    }
    checked = true;
  }
  return {
    log: r.log,
    index,
    tree_size: treeSize,
    entry_hash: toHex(leaf),
    root: toHex(cp.root),
    signed_by: signers.map((k) => k.text),
    entry_checked: checked,
  };
}

/** Verifies GET /v1/ledger/consistency's answer offline: both checkpoints
 * signed by a trusted key, of the log and sizes named, and the proof
 * linking their roots (RFC 9162 2.1.4.2). Resolves to the two parsed
 * checkpoints `[from, to]`. */
export async function verifyConsistency(view, keys) {
  if (!isObject(view)) throw new VerificationError('the answer is not an object');
  const first = nonNegative(view.from, 'from');
  const second = nonNegative(view.to, 'to');
  if (typeof view.from_checkpoint !== 'string' || typeof view.to_checkpoint !== 'string') {
    throw new VerificationError('the answer does not carry both checkpoints');
  }
  const origin = typeof view.log === 'string' ? view.log : null;
  const a = await verifyCheckpoint(view.from_checkpoint, keys, origin);
  const b = await verifyCheckpoint(view.to_checkpoint, keys, origin);
  if (a.size !== first || b.size !== second) {
    throw new VerificationError(`the checkpoints are of sizes ${a.size} and ${b.size}, not ${first} and ${second}`);
  }
  if (!Array.isArray(view.proof)) throw new VerificationError('the proof is not a list');
  const proof = view.proof.map((h, i) => hex32(h, `proof hash ${i}`));
  try {
    verifyConsistencyProof(first, second, a.root, b.root, proof);
  } catch (e) {
    if (e instanceof ProofError) throw new VerificationError(`consistency proof from ${first} to ${second}: ${e.message}`);
    throw e;
  }
  return [a, b];
}

// ---------------------------------------------------------------------------
// Export files

// A long verification gives the event loop a turn this often (lines), or
// sooner when this many milliseconds of work have passed.
const YIELD_LINES = 2048;
const YIELD_MS = 40;

// A message to oneself is a new task, queued behind input, rendering and
// timers, and unlike setTimeout not slowed down in a background tab.
function yieldToEventLoop() {
  if (typeof MessageChannel !== 'function') return new Promise((resolve) => setTimeout(resolve, 0));
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/** The export's lines: each a byte view without its newline, and whether
 * it had one (a last line without is refused by the verifier). */
function* exportLines(data) {
  let start = 0;
  while (start < data.length) {
    const end = data.indexOf(0x0a, start);
    if (end < 0) {
      yield { bytes: data.subarray(start), newline: false };
      return;
    }
    yield { bytes: data.subarray(start, end), newline: true };
    start = end + 1;
  }
}

const CHECKPOINT_PREFIX = UTF8.encode('{"checkpoint":');
const ENTRY_PREFIX = UTF8.encode('{"actor":');
const startsWith = (bytes, prefix) => bytes.length >= prefix.length && equalBytes(bytes.subarray(0, prefix.length), prefix);

/**
 * Verifies an export file offline, as `warden verify FILE --key KEY` does.
 *
 * `input` is the whole NDJSON file: best its bytes (a Uint8Array, an
 * ArrayBuffer, or the dropped File or Blob itself), so that bytes that are
 * not UTF-8 are named as such; a string is taken as its UTF-8 encoding. `keys`
 * is one trusted key or an array of them (verifier key texts, parsed keys,
 * or objects with `verifier`). `onProgress(done, total)`, when given, is
 * called with the entries checked so far and the entries the header
 * promises: at the start, now and then (when the verifier gives the event
 * loop a turn), and at the end.
 *
 * Checks the header; that each entry's bytes are canonical, its `index`
 * follows and its `prev` is the previous entry's hash; that every
 * checkpoint's root is the root recomputed from the header's frontier and
 * the entries, its origin the log's, and its signatures follow the key
 * rules (the checkpoint of a rotation's batch signed by both keys, later
 * ones by the next key); at the end that all `to - from` entries are
 * present, the last one is covered by a checkpoint and every signing key is
 * trusted (given, or linked to a given key by a rotation entry).
 *
 * Resolves to {log, from_index, to_index, entries, checkpoints, tree_size,
 * root, keys, rotations, kinds}; rejects with a VerificationError naming
 * the first fault in file order (the signatures are judged after the
 * whole file is read, as the key rules need every rotation).
 */
export async function verifyExport(input, keys, onProgress = null) {
  const given = await parseKeys(keys);
  const data = typeof Blob === 'function' && input instanceof Blob ? await input.arrayBuffer() : input;
  const lines = exportLines(asBytes(data, 'the export'));
  const first = lines.next();
  if (first.done) throw new VerificationError('the file is empty', { line: 1 });
  const header = await parseHeader(first.value);
  const { log, from: start, to: end } = header;
  const total = end - start;
  const progress = typeof onProgress === 'function' ? onProgress : () => {};
  progress(0, total);

  const frontier = new Frontier(start, header.frontier);
  let prevHex = toHex(header.prev);
  let expected = start;
  const seen = [];
  const rotations = [];
  const kinds = new Map();
  let lastLineWasCheckpoint = false;
  let lineNo = 1;
  let lastCheckpointSize = start;
  let lastYield = performance.now();

  for (const { bytes, newline } of lines) {
    lineNo += 1;
    if (lineNo % 64 === 0 && (lineNo % YIELD_LINES === 0 || performance.now() - lastYield > YIELD_MS)) {
      await yieldToEventLoop();
      lastYield = performance.now();
      progress(expected - start, total);
    }
    if (!newline) throw new VerificationError('the last line does not end with a newline', { line: lineNo });

    if (startsWith(bytes, CHECKPOINT_PREFIX)) {
      const size = frontier.size;
      const at = { index: size ? size - 1 : null, line: lineNo };
      const cp = parseCheckpointLine(bytes, lineNo, expected);
      if (cp.origin !== log) {
        throw new VerificationError(`the checkpoint is of log ${JSON.stringify(cp.origin)}, the file of ${JSON.stringify(log)}`, at);
      }
      if (cp.size !== size) {
        throw new VerificationError(`the checkpoint is of tree size ${cp.size}, but it follows ${size} entries`, at);
      }
      if (!equalBytes(cp.root, frontier.root())) {
        throw new VerificationError(`the checkpoint's root for tree size ${size} is not the root of the entries`, at);
      }
      if (seen.length && seen[seen.length - 1].size === size) {
        throw new VerificationError(`a second checkpoint of tree size ${size} in a row`, at);
      }
      seen.push({ line: lineNo, size, checkpoint: cp, previousSize: lastCheckpointSize });
      lastCheckpointSize = size;
      lastLineWasCheckpoint = true;
      continue;
    }

    const at = { index: expected, line: lineNo };
    if (!startsWith(bytes, ENTRY_PREFIX)) {
      throw new VerificationError('neither an entry (which begins with {"actor":) nor a checkpoint line', at);
    }
    if (expected >= end) throw new VerificationError(`an entry past the end of the range [${start}, ${end})`, at);
    const obj = checkEntryBytes(bytes, expected, lineNo);
    if (obj.index !== BigInt(expected)) {
      throw new VerificationError(`the entry's index is ${obj.index}, expected ${expected} (entries missing or reordered)`, at);
    }
    if (obj.prev !== prevHex) {
      throw new VerificationError(`prev does not match ${expected ? `the hash of entry ${expected - 1}` : '64 zeros'}`, at);
    }
    const leaf = leafHash(bytes);
    frontier.append(leaf);
    prevHex = toHex(leaf);
    kinds.set(obj.kind, (kinds.get(obj.kind) || 0) + 1);
    if (obj.kind === ROTATE_KIND) rotations.push(await parseRotation(obj, expected, lineNo));
    expected += 1;
    lastLineWasCheckpoint = false;
  }

  if (expected !== end) {
    throw new VerificationError(
      `the file holds ${expected - start} entries, the header promises ${total} ([${start}, ${end}))`,
      { index: expected < end ? expected : null, line: lineNo },
    );
  }
  if (!lastLineWasCheckpoint || !seen.length || seen[seen.length - 1].size !== end) {
    throw new VerificationError('the last entry is not covered by a checkpoint', { index: end - 1, line: lineNo });
  }
  const used = await checkSignatures(seen, rotations, given, header.keys);
  progress(total, total);
  return {
    log,
    from_index: start,
    to_index: end,
    entries: total,
    checkpoints: seen.length,
    tree_size: end,
    root: toHex(frontier.root()),
    keys: used.map((k) => k.text),
    rotations: rotations.map((r) => r.index),
    kinds: Object.fromEntries(kinds),
  };
}

async function parseHeader({ bytes, newline }) {
  const at = { line: 1 };
  if (!newline) throw new VerificationError('the header line does not end with a newline', at);
  let h;
  try {
    h = parseJSON(bytes);
  } catch (e) {
    if (e instanceof CanonicalError) throw new VerificationError(`the header is not valid JSON: ${e.message}`, at);
    throw e;
  }
  if (!isObject(h)) throw new VerificationError('the header is not a JSON object', at);
  if (h.format !== EXPORT_FORMAT) {
    throw new VerificationError(`the header's format is ${show(h.format)}, not ${show(EXPORT_FORMAT)}`, at);
  }
  if (typeof h.log !== 'string' || !h.log) throw new VerificationError('the header names no log', at);
  const from = nonNegative(h.from, "the header's from", null, 1);
  const to = nonNegative(h.to, "the header's to", null, 1);
  if (from >= to) throw new VerificationError(`the header's range [${from}, ${to}) is empty`, at);
  const prev = hex32(h.prev, "the header's prev", null, 1);
  if (from === 0 && toHex(prev) !== ZERO_HASH) {
    throw new VerificationError("the header's prev is not 64 zeros for an export from entry 0", at);
  }
  if (!Array.isArray(h.frontier)) throw new VerificationError("the header's frontier is not a list", at);
  const frontier = h.frontier.map((x, i) => hex32(x, `frontier hash ${i}`, null, 1));
  const peaks = subtreeSizes(from).length;
  if (frontier.length !== peaks) {
    throw new VerificationError(`the header's frontier holds ${frontier.length} hashes; ${from} leaves make ${peaks} subtrees`, at);
  }
  // With `from` odd, the last peak is the single leaf of entry from - 1.
  if (isOdd(from) && !equalBytes(frontier[frontier.length - 1], prev)) {
    throw new VerificationError(`the header's prev is not the last frontier hash (the leaf of entry ${from - 1})`, at);
  }
  if (!Array.isArray(h.keys)) throw new VerificationError("the header's keys is not a list", at);
  h.keys.forEach((k, i) => {
    if (!isObject(k) || typeof k.verifier !== 'string') throw new VerificationError(`the header's key ${i} has no verifier`, at);
  });
  const keys = [];
  for (const [i, k] of h.keys.entries()) {
    try {
      keys.push(await parseKeyText(k.verifier));
    } catch (e) {
      if (e instanceof NoteError) throw new VerificationError(`the header's key ${i} is invalid: ${e.message}`, at);
      throw e;
    }
  }
  return { log: h.log, from, to, prev, frontier, keys };
}

function parseCheckpointLine(bytes, line, nextIndex) {
  const at = { index: nextIndex ? nextIndex - 1 : null, line };
  let obj;
  try {
    obj = parseJSON(bytes);
  } catch (e) {
    if (e instanceof CanonicalError) throw new VerificationError(`the checkpoint line is not valid JSON: ${e.message}`, at);
    throw e;
  }
  if (!isObject(obj) || Object.keys(obj).length !== 1 || typeof obj.checkpoint !== 'string') {
    throw new VerificationError('a checkpoint line is {"checkpoint": "<signed note>"}', at);
  }
  try {
    return parseCheckpointText(obj.checkpoint);
  } catch (e) {
    if (e instanceof NoteError) throw new VerificationError(`malformed checkpoint: ${e.message}`, at);
    throw e;
  }
}

async function parseRotation(obj, index, line) {
  const payload = obj.payload;
  if (!isObject(payload)) throw new VerificationError("a key rotation's payload is not an object", { index, line });
  try {
    const previous = await parseKeyText(String(payload.previous));
    const next = await parseKeyText(String(payload.next));
    return { index, previous, next };
  } catch (e) {
    if (e instanceof NoteError) throw new VerificationError(`a key rotation names an invalid key: ${e.message}`, { index, line });
    throw e;
  }
}

/**
 * Applies the key rules to every checkpoint, in order; resolves to the
 * trusted keys that signed, in order of first use.
 *
 * Before the first rotation a checkpoint must be signed by the rotation's
 * `previous` key (or another key no rotation introduced); the checkpoint
 * of the batch holding a rotation by both its keys; every later one by the
 * latest `next`. A key is trusted when given, or linked to a trusted key
 * by a rotation of this file, whose handover checkpoint is checked here to
 * carry both signatures.
 */
async function checkSignatures(seen, rotations, given, headerKeys) {
  const candidates = uniqueKeys([...given, ...headerKeys, ...rotations.map((r) => r.previous), ...rotations.map((r) => r.next)]);
  const trusted = new Set(given.map((k) => k.text));
  for (let changed = true; changed; ) {
    changed = false;
    for (const r of rotations) {
      if (trusted.has(r.previous.text) !== trusted.has(r.next.text)) {
        trusted.add(r.previous.text).add(r.next.text);
        changed = true;
      }
    }
  }
  const laterKeys = new Set(rotations.map((r) => r.next.text));
  const used = [];

  // The signatures of many checkpoints are checked at once (Web Crypto works
  // off the page's thread); the rules are then applied in order.
  const BATCH = 64;
  for (let b = 0; b < seen.length; b += BATCH) {
    const batch = seen.slice(b, b + BATCH);
    const signersOf = await Promise.all(batch.map((s) => signedBy(s.checkpoint.note, candidates)));
    batch.forEach((s, i) => applyKeyRules(s, signersOf[i], rotations, laterKeys, trusted, used));
  }
  return used;
}

function applyKeyRules(s, signers, rotations, laterKeys, trusted, used) {
  const at = { index: s.size ? s.size - 1 : null, line: s.line };
  const signed = new Set(signers.map((k) => k.text));
  const covered = rotations.filter((r) => r.index < s.size);
  const handovers = covered.filter((r) => r.index >= s.previousSize);
  for (const r of handovers) {
    if (!signed.has(r.previous.text) || !signed.has(r.next.text)) {
      throw new VerificationError(
        `the checkpoint of tree size ${s.size}, which covers the key rotation at entry ${r.index}, must be signed by both ` +
          `${describeKey(r.previous)} and ${describeKey(r.next)} (signed by: ${describeKeys(signers)})`,
        at,
      );
    }
  }
  let accepted;
  if (covered.length) {
    const last = covered[covered.length - 1];
    const current = last.next;
    if (!signed.has(current.text)) {
      const retired = signers.filter((k) => k.text !== current.text);
      const why = retired.length ? `it is signed only by retired key(s) ${describeKeys(retired)}` : 'it carries no valid signature of it';
      throw new VerificationError(
        `the checkpoint of tree size ${s.size} comes after the key rotation at entry ${last.index} and must be signed by ${describeKey(current)}; ${why}`,
        at,
      );
    }
    accepted = [current, ...handovers.map((r) => r.previous)];
  } else if (rotations.length) {
    const first = rotations[0].previous;
    const earlier = signers.filter((k) => !laterKeys.has(k.text));
    if (signed.has(first.text)) accepted = [first];
    else if (earlier.length) accepted = earlier;
    else {
      throw new VerificationError(
        `the checkpoint of tree size ${s.size} comes before the key rotation at entry ${rotations[0].index} and must be signed by ` +
          `${describeKey(first)} (signed by: ${describeKeys(signers)})`,
        at,
      );
    }
  } else {
    if (!signers.length) {
      throw new VerificationError(
        `the checkpoint of tree size ${s.size} carries no valid signature of a known key (signature lines: ${signatureNames(s.checkpoint.note)})`,
        at,
      );
    }
    accepted = signers;
  }
  if (!accepted.some((k) => trusted.has(k.text))) {
    throw new VerificationError(
      `the checkpoint of tree size ${s.size} is signed by ${describeKeys(accepted)}, which is not a trusted key ` +
        '(none given, nor linked to a given key by a rotation in this file)',
      at,
    );
  }
  for (const k of accepted) if (trusted.has(k.text) && !used.some((u) => u.text === k.text)) used.push(k);
}
