"""The console's offline evidence verifier (src/console/assets/verify.js) in a
real browser: headless Chromium, driven by Selenium, loads the module from a
real Warden at /ui/assets/verify.js, as the console does, and runs it.

Every answer is checked against a reference: BLAKE3 against the reference
implementation (the `blake3` package), the Merkle tree, checkpoints and
canonical JSON against the test vectors of docs/ledger-format.md, and every
export and receipt against the Python verifier (warden.verify), which must
agree on each: the same report, or a refusal naming the same entry and line.
The evidence comes from the specification's writer (tests/ledgerkit.py: key
rotations and every kind of tampering) and from a real Warden (decisions,
audit events, tokens, a real key rotation), good and tampered."""

from __future__ import annotations

import base64
import dataclasses
import json
import random
import re
import secrets
from collections.abc import Iterator
from typing import Any

import blake3
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ledgerkit import Log, canonical_cases, checkpoint_text, doc_block, make_signer, rotated_log, sample_log, vectors
from chromium import open_chromium
from selenium.webdriver.remote.webdriver import WebDriver
from wardenproc import WardenServer, binary

import warden
from warden import VerificationError, merkle, note, verify

pytestmark = pytest.mark.integration

SCRIPT_TIMEOUT = 180.0
MODULE = "/ui/assets/verify.js"

# ---- the browser and the server ---------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WardenServer]:
    """A Warden of these tests' own: they rotate its ledger key. A missing
    binary is a failure, never a skip."""
    try:
        bin_path = binary()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    s = WardenServer(bin=bin_path, data_dir=tmp_path_factory.mktemp("warden-verify-data")).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def page(server: WardenServer) -> Iterator[WebDriver]:
    """One headless Chromium showing the console's page, served by Warden."""
    d = open_chromium(script_timeout=SCRIPT_TIMEOUT)
    try:
        d.get(f"{server.url}/ui")
        yield d
    finally:
        d.quit()


# Runs an async function body in the page with `v` (the module, imported from
# Warden), `args` and `outcome(f)`, which turns a result or an error into
# {ok} or {error}. Uint8Arrays and BigInts do not cross WebDriver: bodies
# return hex and numbers.
RUNNER = """
const done = arguments[arguments.length - 1];
const args = Array.from(arguments).slice(0, -1);
const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const fail = (e) => ({error: {name: e && e.name, message: String(e && e.message), index: e && e.index !== undefined ? e.index : null,
  line: e && e.line !== undefined ? e.line : null}});
import('%s').then(async (v) => {
  const outcome = async (f) => { try { return {ok: await f()}; } catch (e) { return {...fail(e), verification: e instanceof v.VerificationError}; } };
  %%s
}).then((value) => done({ok: value === undefined ? null : value}), (e) => done(fail(e)));
""" % MODULE


def run_js(d: WebDriver, body: str, *args: Any) -> Any:
    """Runs `body` in the page and returns its value; a JavaScript error fails the test."""
    out = d.execute_async_script(RUNNER % body, *args)
    assert isinstance(out, dict), out
    assert "ok" in out, f"the script failed in the browser: {out.get('error')}"
    return out["ok"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# ---- the reference, and agreement with it --------------------------------------------


def py_export(data: bytes, keys: Any) -> dict[str, Any]:
    try:
        return {"ok": dataclasses.asdict(verify.verify_export(data, keys))}
    except VerificationError as e:
        return {"error": {"index": e.index, "line": e.line, "message": str(e)}}


def py_receipt(receipt: Any, keys: Any, entry: str | None = None) -> dict[str, Any]:
    try:
        return {"ok": dataclasses.asdict(verify.verify_receipt(receipt, keys, entry=entry))}
    except VerificationError as e:
        return {"error": {"index": e.index, "line": e.line, "message": str(e)}}


def where(message: str, index: int | None, line: int | None) -> str:
    """The part of a message that names the entry and line (both verifiers
    write it the same way)."""
    if index is None and line is None:
        return ""
    return message.split(": ", 1)[0]


def assert_agree(name: str, js: dict[str, Any], py: dict[str, Any]) -> None:
    if "ok" in py:
        assert "ok" in js, f"{name}: Python accepts, the browser refuses: {js['error']}"
        assert js["ok"] == py["ok"], f"{name}: the reports differ:\nbrowser {js['ok']}\npython  {py['ok']}"
        return
    err = py["error"]
    assert "error" in js, f"{name}: Python refuses ({err['message']}), the browser accepts: {js['ok']}"
    got = js["error"]
    assert js.get("verification") is True and got["name"] == "VerificationError", f"{name}: {got}"
    assert (got["index"], got["line"]) == (err["index"], err["line"]), (
        f"{name}: the browser names entry {got['index']} line {got['line']}: {got['message']}\n"
        f"Python names entry {err['index']} line {err['line']}: {err['message']}"
    )
    assert where(got["message"], got["index"], got["line"]) == where(err["message"], err["index"], err["line"]), (name, got, err)


VERIFY_EXPORTS = """
const out = [];
for (const c of args[0]) {
  const input = c.text !== undefined ? c.text : bytes(c.data);
  out.push(await outcome(() => v.verifyExport(input, c.keys)));
}
return out;
"""


def export_case(data: bytes, keys: Any, *, as_text: bool = False) -> dict[str, Any]:
    return {"text": data.decode("utf-8"), "keys": keys} if as_text else {"data": b64(data), "keys": keys}


def verify_exports_in_browser(d: WebDriver, cases: list[tuple[str, bytes, Any]]) -> dict[str, dict[str, Any]]:
    """Verifies each (name, file, keys) in the browser and with Python, asserts
    that they agree, and returns the browser's outcomes by name."""
    results = run_js(d, VERIFY_EXPORTS, [export_case(data, keys) for _, data, keys in cases])
    out = {}
    for (name, data, keys), js in zip(cases, results):
        assert_agree(name, js, py_export(data, keys))
        out[name] = js
    return out


VERIFY_RECEIPTS = """
const out = [];
for (const c of args[0]) out.push(await outcome(() => v.verifyReceipt(c.receipt, c.keys, c.entry)));
return out;
"""


def verify_receipts_in_browser(d: WebDriver, cases: list[tuple[str, Any, Any, str | None]]) -> dict[str, dict[str, Any]]:
    results = run_js(
        d, VERIFY_RECEIPTS, [{"receipt": r, "keys": k, "entry": e} for _, r, k, e in cases]
    )
    out = {}
    for (name, receipt, keys, entry), js in zip(cases, results):
        py = py_receipt(json.loads(receipt) if isinstance(receipt, str) else receipt, keys, entry)
        assert_agree(name, js, py)
        out[name] = js
    return out


def lines_of(data: bytes) -> list[bytes]:
    return data.split(b"\n")[:-1]


def join(lines: list[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n"


def is_entry(line: bytes) -> bool:
    return line.startswith(b'{"actor":')


def entry_line(lines: list[bytes], index: int) -> int:
    """The position in `lines` of entry `index`."""
    return next(n for n, line in enumerate(lines) if is_entry(line) and json.loads(line)["index"] == index)


def flip(line: bytes, at: int, to: int | None = None) -> bytes:
    """`line` with its byte at `at` changed (to `to`, or its lowest bit flipped)."""
    new = bytes([to if to is not None else line[at] ^ 0x01])
    assert new != line[at : at + 1]
    return line[:at] + new + line[at + 1 :]


# ---- the module ----------------------------------------------------------------------------

EXPORTS = {
    "CanonicalError", "Frontier", "ProofError", "VerificationError", "blake3", "canonicalJSON", "emptyRoot",
    "fromHex", "leafHash", "merkleRoot", "nodeHash", "parseCheckpoint", "parseJSON", "parseKey",
    "rootFromInclusion", "toHex", "verifyCheckpoint", "verifyConsistency", "verifyConsistencyProof",
    "verifyExport", "verifyInclusion", "verifyReceipt",
}


def test_the_module_is_served_by_warden_and_importing_it_changes_nothing(server: WardenServer, page: WebDriver) -> None:
    r = httpx.get(f"{server.url}{MODULE}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in r.headers["content-security-policy"]
    # No DOM and no third-party code: it stands alone.
    assert not re.search(r"\b(document|window|navigator|localStorage)\s*\.|\bfetch\s*\(|XMLHttpRequest", r.text)
    assert not re.search(r"^\s*import\s", r.text, re.M)

    page.get(f"{server.url}/ui")  # a fresh page: the module is not loaded yet
    seen = page.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const before = Object.getOwnPropertyNames(globalThis).sort();
        import('%s').then((v) => done({
          exports: Object.keys(v).sort(),
          added: Object.getOwnPropertyNames(globalThis).filter((n) => !before.includes(n)),
          title: document.title,
        }), (e) => done({error: String(e)}));
        """ % MODULE
    )
    assert "error" not in seen, seen
    assert set(seen["exports"]) == EXPORTS
    assert seen["added"] == [], f"importing the module added globals: {seen['added']}"
    assert seen["title"] == "Warden console"


# ---- BLAKE3 ---------------------------------------------------------------------------------

# The input lengths of the official BLAKE3 test vectors; input byte i is i % 251.
OFFICIAL_LENGTHS = [
    0, 1, 63, 64, 65, 127, 128, 129, 1023, 1024, 1025, 2048, 2049, 3072, 3073, 4096, 4097,
    5120, 5121, 6144, 6145, 7168, 7169, 8192, 8193, 16384, 31744, 102400,
]


def test_blake3_matches_the_reference_implementation(page: WebDriver) -> None:
    official = run_js(
        page,
        """
        return args[0].map((n) => {
          const input = new Uint8Array(n);
          for (let i = 0; i < n; i++) input[i] = i % 251;
          return v.toHex(v.blake3(input));
        });
        """,
        OFFICIAL_LENGTHS,
    )
    expected = [blake3.blake3(bytes(i % 251 for i in range(n))).hexdigest() for n in OFFICIAL_LENGTHS]
    wrong = [(n, got) for n, got, want in zip(OFFICIAL_LENGTHS, official, expected) if got != want]
    assert not wrong, f"BLAKE3 differs from the reference for input lengths {[n for n, _ in wrong]}"

    # Arbitrary bytes, lengths around every boundary of blocks, chunks and the tree.
    rng = random.Random(20261206)
    inputs = [rng.randbytes(n) for n in (2, 55, 64, 1000, 1024, 1088, 4095, 65537, 300001)]
    inputs.append("\u00e9t\u00e9 \u2603".encode())
    got = run_js(page, "return args[0].map((b) => v.toHex(v.blake3(bytes(b))));", [b64(x) for x in inputs])
    assert got == [blake3.blake3(x).hexdigest() for x in inputs]
    # A string is hashed as its UTF-8 bytes.
    assert run_js(page, "return v.toHex(v.blake3(args[0]));", "\u00e9t\u00e9 \u2603") == got[-1]


# ---- the test vectors of docs/ledger-format.md -------------------------------------------

VECTORS = """
const [V, canonical] = args;
const h = v.toHex;
const leaves = (n) => Array.from({length: n}, (_, i) => v.leafHash(new Uint8Array(i + 1).fill(i)));
const refusal = (f) => { try { f(); return null; } catch (e) { return e.name; } };
const out = {};
out.empty_root = h(v.emptyRoot());
out.leaf_0 = h(leaves(1)[0]);
for (const n of [2, 3, 5, 7]) out[`root_${n}`] = h(v.merkleRoot(leaves(n)));
const seven = leaves(7);
const root7 = v.fromHex(V.root_7);
const path = V.inclusion_2_of_7.split(' ').map(v.fromHex);
out.inclusion_root = h(v.rootFromInclusion(2, 7, seven[2], path));
out.inclusion_ok = refusal(() => v.verifyInclusion(2, 7, seven[2], path, root7));
out.inclusion_other_index = refusal(() => v.verifyInclusion(3, 7, seven[2], path, root7));
out.inclusion_short = refusal(() => v.verifyInclusion(2, 7, seven[2], path.slice(0, -1), root7));
out.inclusion_other_leaf = refusal(() => v.verifyInclusion(2, 7, seven[3], path, root7));
const proof = V.consistency_3_to_7.split(' ').map(v.fromHex);
const cons = (a, b, p) => refusal(() => v.verifyConsistencyProof(3, 7, v.fromHex(a), v.fromHex(b), p));
out.consistency_ok = cons(V.root_3, V.root_7, proof);
out.consistency_other_first = cons(V.root_2, V.root_7, proof);
out.consistency_other_second = cons(V.root_3, V.root_5, proof);
out.consistency_short = cons(V.root_3, V.root_7, proof.slice(0, -1));
out.entry_0_hash = h(v.leafHash(V.entry_0_bytes));
out.entry_0_canonical = v.canonicalJSON(v.parseJSON(V.entry_0_bytes));

const key = await v.parseKey(V.checkpoint_verifier);
out.key = {name: key.name, key_id: key.keyId, public_key: h(key.publicKey), text: key.text};
const root64 = btoa(String.fromCharCode(...v.fromHex(V.checkpoint_root)));
const body = `${V.checkpoint_key_name}\\n${V.checkpoint_size}\\n${root64}\\n`;
const signed = `${body}\\n${V.checkpoint_signature_line}\\n`;
const cp = await v.verifyCheckpoint(signed, V.checkpoint_verifier, V.checkpoint_key_name);
out.checkpoint = {origin: cp.origin, size: cp.size, root: h(cp.root)};
const refused = async (f) => { const o = await outcome(f); return o.error ? o.error.name + ': ' + o.error.message : 'accepted'; };
out.checkpoint_other_size = await refused(() => v.verifyCheckpoint(signed.replace('\\n5\\n', '\\n6\\n'), V.checkpoint_verifier));
out.checkpoint_other_origin = await refused(() => v.verifyCheckpoint(signed, V.checkpoint_verifier, 'warden.example/log/other'));
out.checkpoint_other_key = await refused(() => v.verifyCheckpoint(signed, args[2]));
out.bad_keys = await Promise.all(args[3].map((k) => refused(() => v.parseKey(k))));

out.canonical = canonical.map(([given]) => {
  try { return v.canonicalJSON(v.parseJSON(given)); } catch (e) { return `refused ${e.code} ${e.pointer}`; }
});
return out;
"""


def test_the_ledger_format_vectors(page: WebDriver) -> None:
    V = vectors()
    cases = canonical_cases()
    verifier = V["checkpoint_verifier"]
    name, kid, key64 = verifier.split("+", 2)
    bad_keys = ["nope", f"{name}+{kid}", f"{name}+00000000+{key64}", f"{name}+{kid}+AA==", f"a b+{kid}+{key64}",
                f"{name}+{kid.upper()}+{key64}", f"{name}+{kid}+{key64[:-1]}"]
    other = make_signer(7, name).verifier
    out = run_js(page, VECTORS, V, [list(c) for c in cases], other, bad_keys)

    for k in ("empty_root", "leaf_0", "root_2", "root_3", "root_5", "root_7", "entry_0_hash"):
        assert out[k] == V[k], k
    assert out["inclusion_root"] == V["root_7"]
    assert out["inclusion_ok"] is None and out["consistency_ok"] is None
    for k in ("inclusion_other_index", "inclusion_short", "inclusion_other_leaf", "consistency_other_first",
              "consistency_other_second", "consistency_short"):
        assert out[k] == "ProofError", k
    # The entry's bytes are exactly the canonical encoding of what they hold.
    assert out["entry_0_canonical"] == V["entry_0_bytes"]

    seed = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(V["checkpoint_key_seed"]))
    assert note.verifier_for(name, seed) == verifier
    public = verify.parse_key(verifier).public_key.hex()
    assert out["key"] == {"name": name, "key_id": kid, "public_key": public, "text": verifier}
    assert out["checkpoint"] == {"origin": name, "size": int(V["checkpoint_size"]), "root": V["checkpoint_root"]}
    assert out["checkpoint_other_size"].startswith("VerificationError: no trusted key signed"), out
    assert out["checkpoint_other_origin"].startswith("VerificationError: the checkpoint is of log"), out
    assert out["checkpoint_other_key"].startswith("VerificationError: no trusted key signed"), out
    for key, refusal in zip(bad_keys, out["bad_keys"]):
        assert refusal.startswith("VerificationError: invalid verifier key"), (key, refusal)
        with pytest.raises(ValueError):
            verify.parse_key(key)

    for (given, expected), got in zip(cases, out["canonical"]):
        assert got == expected, given

    # The export of the document: accepted with its key, refused with another.
    data = doc_block("export").encode()
    seen = verify_exports_in_browser(page, [("the document's export", data, verifier), ("another key", data, other)])
    assert seen["the document's export"]["ok"]["keys"] == [verifier]
    assert seen["the document's export"]["ok"]["checkpoints"] == 2
    assert seen["another key"]["error"]["index"] == 1
    assert "not a trusted key" in seen["another key"]["error"]["message"]


# ---- evidence from the specification's writer (ledgerkit) -------------------------------


def written_cases() -> list[tuple[str, bytes, Any]]:
    cases: list[tuple[str, bytes, Any]] = []
    log = sample_log(9, batch=2)
    key = log.signer.verifier
    data = log.export()
    cases.append(("a log of nine entries", data, key))
    cases.append(("keys as GET /v1/ledger/keys lists them", data, [{"verifier": key, "current": True}]))
    for start in range(1, 9):
        cases.append((f"from entry {start}", log.export(start), key))

    lines = lines_of(log.export())
    header_end = data.index(b"\n") + 1
    for pos in range(header_end, len(data) - 1, 11):
        if data[pos] != 0x0A:
            cases.append((f"byte {pos} flipped", data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :], key))
    swapped = list(lines)
    a, b = entry_line(lines, 3), entry_line(lines, 4)
    swapped[a], swapped[b] = swapped[b], swapped[a]
    cases.append(("entries 3 and 4 swapped", join(swapped), key))
    cases.append(("entry 6 deleted", join([x for n, x in enumerate(lines) if n != entry_line(lines, 6)]), key))
    respaced = list(lines)
    n = entry_line(lines, 2)
    respaced[n] = json.dumps(json.loads(lines[n]), separators=(",", ": "), sort_keys=True).encode()
    cases.append(("entry 2 written with spaces", join(respaced), key))
    cases.append(("the last three lines cut", join(lines[:-3]), key))
    cases.append(("the last checkpoint cut", join(lines[:-1]), key))
    cases.append(("the last newline cut", join(lines)[:-1], key))
    cases.append(("an empty file", b"", key))
    cases.append(("another key", data, make_signer(5).verifier))

    header = json.loads(lines_of(log.export(2))[0])
    rest = lines_of(log.export(2))[1:]
    changes: list[dict[str, Any]] = [
        {"format": "warden-ledger-export/2"}, {"frontier": []}, {"prev": "1" * 64}, {"from": 4}, {"to": 2},
        {"keys": [{"verifier": "nope"}]}, {"log": ""},
    ]
    for i, change in enumerate(changes):
        cases.append((f"header fault {i}", join([json.dumps({**header, **change}).encode(), *rest]), key))

    deep: object = 1
    for _ in range(100):
        deep = [deep]
    ok_deep = Log("warden.test/log/t", make_signer())
    ok_deep.append("x", deep)  # a payload of 100 levels
    ok_deep.seal()
    cases.append(("a payload 100 levels deep", ok_deep.export(), ok_deep.signer.verifier))
    too_deep = Log("warden.test/log/t", make_signer())
    too_deep.append("x", [deep])  # 101 levels
    too_deep.seal()
    cases.append(("a payload 101 levels deep", too_deep.export(), too_deep.signer.verifier))

    text = Log("warden.test/log/u", make_signer(4))
    text.append(
        "x",
        {
            "s": "caf\u00e9 \u2603 \U0001F600 \u2028 \x7f \x01 \"q\" \\",
            "f": [0.1, 1e300, 1.5e-7, -0.0, 1e21, 123456789.125, 5e-324],
            "i": [18446744073709551615, -9223372036854775808, 0],
            "\u00e9": 1, "a\U0001F600": 2, "a\uffff": 3, "": None, "__proto__": {"constructor": True},
        },
    )
    text.seal()
    cases.append(("strings, numbers and names of every kind", text.export(), text.signer.verifier))

    rotated, old, new = rotated_log()
    for name, keys in (("old", old), ("new", new), ("both", [new, old]), ("neither", make_signer(3).verifier)):
        cases.append((f"a rotation, trusting the {name} key", rotated.export(), keys))
    for start in range(1, 5):
        cases.append((f"a rotation, from entry {start}", rotated.export(start), old))
    handover, old, _ = rotated_log()
    size = handover.checkpoints[1][0]
    handover.checkpoints[1] = (size, checkpoint_text(handover.origin, size, merkle.root(handover.leaves[:size]), [make_signer(2)]))
    cases.append(("a handover not cosigned", handover.export(), old))
    retired, old, _ = rotated_log()
    size = retired.checkpoints[2][0]
    retired.checkpoints[2] = (size, checkpoint_text(retired.origin, size, merkle.root(retired.leaves[:size]), [make_signer(1)]))
    cases.append(("the retired key signing after the rotation", retired.export(), old))
    return cases


def test_exports_written_by_the_specification_agree_with_python(page: WebDriver) -> None:
    cases = written_cases()
    seen = verify_exports_in_browser(page, cases)
    accepted = {name for name, o in seen.items() if "ok" in o}
    assert "a log of nine entries" in accepted and "a rotation, trusting the new key" in accepted
    assert seen["a rotation, trusting the new key"]["ok"]["rotations"] == [2]
    assert "entry 3 (line 6): " in seen["entries 3 and 4 swapped"]["error"]["message"]
    assert "canonical" in seen["entry 2 written with spaces"]["error"]["message"]
    assert "both" in seen["a handover not cosigned"]["error"]["message"]
    assert "retired" in seen["the retired key signing after the rotation"]["error"]["message"]
    assert "too deep" in seen["a payload 101 levels deep"]["error"]["message"]
    # Every flipped byte is refused.
    assert all("error" in o for name, o in seen.items() if name.startswith("byte ")), seen


def test_receipts_written_by_the_specification_agree_with_python(page: WebDriver) -> None:
    log = Log("warden.test/log/t", make_signer())
    for i in range(9):
        log.append("decision", {"n": i, "decision_id": f"dec_{i}"})
        log.seal()
    key = log.signer.verifier
    cases: list[tuple[str, Any, Any, str | None]] = [
        (f"entry {i} in a tree of {n}", log.receipt(i, n), key, None) for n in range(1, 10) for i in range(n)
    ]
    r = log.receipt(2, 7)
    entry = log.entries[2].decode()
    cases += [
        ("with its entry", {"decision_id": "dec_2", "receipt": r}, key, entry),
        ("as JSON text", json.dumps({"decision_id": "dec_2", "receipt": r}), key, None),
        ("another decision's entry", {"decision_id": "dec_3", "receipt": r}, key, entry),
        ("the entry changed", r, key, entry.replace("dec_2", "dec_X")),
        ("the entry respaced", r, key, entry.replace('"n":2', '"n": 2')),
        ("another entry", r, key, log.entries[3].decode()),
        ("the proof cut", dict(r, inclusion=r["inclusion"][:-1]), key, None),
        ("the proof lengthened", dict(r, inclusion=[*r["inclusion"], "00" * 32]), key, None),
        ("another entry hash", dict(r, entry_hash=log.leaves[3].hex()), key, None),
        ("another tree size", dict(r, tree_size=6), key, None),
        ("another log", dict(r, log="warden.test/log/other"), key, None),
        ("another index", dict(r, index=3), key, None),
        ("another key", r, make_signer(9).verifier, None),
        ("no receipt", {"decision_id": "d", "receipt": None}, key, None),
    ]
    seen = verify_receipts_in_browser(page, cases)
    assert seen["with its entry"]["ok"]["entry_checked"] is True
    assert seen["as JSON text"]["ok"]["root"] == merkle.root(log.leaves[:7]).hex()
    assert all("ok" in seen[f"entry {i} in a tree of {n}"] for n in range(1, 10) for i in range(n))


# ---- a real Warden's evidence --------------------------------------------------------------

POLICY = """package verifytest.refunds

default allow := false

allow if input.amount < 1000

reasons contains "the amount needs a second approval" if input.amount >= 1000
"""


@dataclasses.dataclass
class Evidence:
    admin: warden.Client
    decisions: list[warden.Decision]
    audit_events: list[dict[str, Any]]
    keys_before: list[str]
    keys: list[str]
    data: bytes


@pytest.fixture(scope="module")
def evidence(server: WardenServer) -> Iterator[Evidence]:
    """A real log: a bundle, decisions, tokens minted and revoked, audit
    events (one, then a batch recorded together), a rotation of the ledger
    key, and more of each after it."""
    with warden.Client(server.url, server.token) as admin:
        bundle = warden.build_bundle({"verifytest/refunds.rego": POLICY}, revision="1", roots=["verifytest"])
        admin.push_bundle(bundle, "verifytest", activate=True)
        decisions = [
            admin.decide("verifytest/refunds", {"amount": 10, "note": "caf\u00e9 \u2603"}, context={"run": "r-1"}),
            admin.decide("verifytest/refunds", {"amount": 5000, "ns": 18446744073709551615, "ratio": 0.1}),
        ]
        assert (decisions[0].allow, decisions[1].allow) == (True, False)
        suffix = secrets.token_hex(3)
        tok = admin.create_token(f"verify-ci-{suffix}", ["orchestrator"])
        admin.create_token(f"verify-auditor-{suffix}", ["auditor"])
        admin.revoke_token(tok["id"])
        audit_events = [admin.audit({"timestamp": "2026-12-06T10:00:00Z", "action": "document_read", "result": "success",
                                     "agent_id": "claims-agent", "resource": {"connector": "procore", "document_id": "doc-1"}})["events"][0]]
        batch = admin.audit_batch(
            [{"timestamp": f"2026-12-06T10:00:0{i}Z", "action": "tool.invoke", "result": "allowed"} for i in range(1, 5)]
        )
        audit_events += batch["events"]
        keys_before = admin.verifier_keys()
        admin.rotate_ledger_key()
        decisions.append(admin.decide("verifytest/refunds", {"amount": 20}))
        audit_events += admin.audit({"timestamp": "2026-12-06T11:00:00Z", "action": "tool.invoke", "result": "denied"})["events"]
        keys = admin.verifier_keys()
        assert len(keys) == 2 and keys_before[0] in keys
        yield Evidence(admin, decisions, audit_events, keys_before, keys, admin.export())


def test_a_real_export_verifies_in_the_browser_as_in_python(page: WebDriver, evidence: Evidence) -> None:
    data, keys = evidence.data, evidence.keys
    old = evidence.keys_before[0]
    new = next(k for k in keys if k != old)
    report = verify.verify_export(data, keys)
    assert report.rotations and report.kinds["decision"] == 3 and report.kinds["ledger.key.rotate"] == 1

    listed = evidence.admin.ledger_keys()
    mid = evidence.admin.export(from_index=report.entries // 2)
    after = evidence.admin.export(from_index=report.rotations[0] + 1)
    seen = verify_exports_in_browser(
        page,
        [
            ("every key", data, keys),
            ("keys as the API lists them", data, listed),
            ("the key before the rotation alone", data, old),
            ("the key after the rotation alone", data, new),
            ("from the middle", mid, keys),
            ("after the rotation", after, new),
        ],
    )
    got = seen["every key"]["ok"]
    assert got["entries"] == report.entries and got["root"] == report.root and got["rotations"] == report.rotations
    assert set(got["keys"]) == {old, new}
    # Trusting either key of the chain trusts the other: the rotation links them.
    assert seen["the key before the rotation alone"]["ok"] == got
    assert seen["the key after the rotation alone"]["ok"] == got
    checkpoint = evidence.admin.checkpoint()
    assert got["root"] == checkpoint["root"] or got["tree_size"] < checkpoint["size"]

    # The file as text (as File.text() gives it), with progress reported,
    # and as the dropped file itself.
    text = run_js(
        page,
        """
        const calls = [];
        const report = await v.verifyExport(args[0], args[1], (done, total) => calls.push([done, total]));
        const file = await v.verifyExport(new Blob([args[0]], {type: 'application/x-ndjson'}), args[1]);
        return {report, calls, file};
        """,
        data.decode("utf-8"),
        keys,
    )
    assert text["report"] == got and text["file"] == got
    assert text["calls"][0] == [0, report.entries] and text["calls"][-1] == [report.entries, report.entries]


def test_a_real_export_tampered_is_refused_naming_the_entry(page: WebDriver, evidence: Evidence) -> None:
    data, keys = evidence.data, evidence.keys
    lines = lines_of(data)
    kinds = {n: json.loads(line)["kind"] for n, line in enumerate(lines) if is_entry(line)}
    index_of = {n: json.loads(lines[n])["index"] for n in kinds}

    def closes_batch(n: int) -> bool:
        return n + 1 < len(lines) and lines[n + 1].startswith(b'{"checkpoint":')

    cases: list[tuple[str, bytes, Any]] = []
    expect: dict[str, tuple[int, str]] = {}  # name: (index named, words in the reason)

    def tamper(name: str, n: int, line: bytes, index: int, words: str) -> None:
        cases.append((name, join([*lines[:n], line, *lines[n + 1 :]]), keys))
        expect[name] = (index, words)

    # A decision's payload changed, the last entry of its batch: its checkpoint's root no longer matches.
    n = next(n for n, k in kinds.items() if k == "decision" and closes_batch(n))
    at = lines[n].index(b'"decision_id":"dec_') + len(b'"decision_id":"dec_') + 3
    tamper("a decision's id", n, flip(lines[n], at), index_of[n], "root")
    # An entry inside a batch (the audit batch): the next entry's prev no longer matches.
    n = next(n for n, k in kinds.items() if k.startswith("audit") and not closes_batch(n))
    at = lines[n].index(b'"result":"allowed"') + len(b'"result":"') + 2
    tamper("an audit event's result", n, flip(lines[n], at), index_of[n] + 1, f"the hash of entry {index_of[n]}")
    # Its prev, its index, its canonical form, its JSON.
    n = next(n for n, k in kinds.items() if k == "token.create")
    tamper("a token's prev", n, flip(lines[n], lines[n].index(b'"prev":"') + 20), index_of[n], "prev")
    at = lines[n].index(b',"kind":') - 1  # the index's last digit
    tamper("a token's index", n, flip(lines[n], at), index_of[n], f"expected {index_of[n]}")
    tamper("a token's ts ending in a space", n, flip(lines[n], len(lines[n]) - 2, ord(" ")), index_of[n], "canonical")
    tamper("a token's JSON", n, flip(lines[n], lines[n].index(b'"kind":') + 6, ord(";")), index_of[n], "malformed_json")
    # The rotation entry, and a checkpoint's signature.
    n = next(n for n, k in kinds.items() if k == "ledger.key.rotate")
    at = lines[n].index(b'"next":"') + 20
    tamper("the rotation's next key", n, flip(lines[n], at), index_of[n], "")
    c = next(n for n, line in enumerate(lines) if line.startswith(b'{"checkpoint":') and n > 3)
    dash = lines[c].find("\u2014".encode())
    sig = (dash if dash >= 0 else lines[c].index(b"\\u2014")) + 40  # inside the signature's base64
    size = json.loads(lines[c])["checkpoint"].split("\n")[1]
    other = ord("A") if lines[c][sig] != ord("A") else ord("B")
    cases.append(("a checkpoint's signature", join([*lines[:c], flip(lines[c], sig, other), *lines[c + 1 :]]), keys))
    expect["a checkpoint's signature"] = (int(size) - 1, "signed")

    # Truncated, another key, lines reordered.
    cases += [
        ("the last checkpoint cut", join(lines[:-1]), keys),
        ("cut mid-line", data[: len(data) - 40], keys),
        ("only the header", join(lines[:1]), keys),
        ("another key", data, make_signer(42, "warden.local").verifier),
    ]
    last = max(kinds)
    expect["the last checkpoint cut"] = (index_of[last], "not covered")
    n = next(n for n, k in kinds.items() if k.startswith("audit") and (n + 1) in kinds)
    swapped = list(lines)
    swapped[n], swapped[n + 1] = swapped[n + 1], swapped[n]
    cases.append(("two entries swapped", join(swapped), keys))
    expect["two entries swapped"] = (index_of[n], f"expected {index_of[n]}")
    c = next(n for n, line in enumerate(lines) if line.startswith(b'{"checkpoint":') and n - 1 in kinds and index_of[n - 1] >= 2)
    moved = list(lines)
    moved[c - 1], moved[c] = moved[c], moved[c - 1]
    cases.append(("a checkpoint moved up a line", join(moved), keys))
    expect["a checkpoint moved up a line"] = (index_of[c - 1] - 1, "tree size")

    seen = verify_exports_in_browser(page, cases)
    for name, outcome in seen.items():
        assert "error" in outcome, f"{name}: accepted: {outcome}"
        if name in expect:
            index, words = expect[name]
            err = outcome["error"]
            assert err["index"] == index and f"entry {index} (line " in err["message"], (name, err)
            assert words in err["message"], (name, err)
    assert "not a trusted key" in seen["another key"]["error"]["message"]
    assert "newline" in seen["cut mid-line"]["error"]["message"]
    assert "promises" in seen["only the header"]["error"]["message"]


def test_real_receipts_verify_and_altered_ones_are_refused(page: WebDriver, evidence: Evidence) -> None:
    admin, keys = evidence.admin, evidence.keys
    cases: list[tuple[str, Any, Any, str | None]] = []
    for i, d in enumerate(evidence.decisions):
        entry = admin.ledger_entry(d.receipt["index"], tree_size=d.receipt["tree_size"])["bytes"]  # type: ignore[index]
        cases += [(f"decision {i}", d.raw, keys, None), (f"decision {i} with its entry", d.raw, keys, entry)]
    for i, e in enumerate(evidence.audit_events):
        cases.append((f"audit event {i}", e, keys, None))
    d = evidence.decisions[0]
    r = d.receipt
    assert r is not None and r["inclusion"], r
    entry = admin.ledger_entry(r["index"], tree_size=r["tree_size"])["bytes"]
    cp = r["checkpoint"]
    body, sigs = cp.split("\n\n", 1)
    root_line = body.split("\n")[2]
    other_root = ("B" if root_line[0] != "B" else "C") + root_line[1:]
    other_sig = sigs[:30] + ("B" if sigs[30] != "B" else "C") + sigs[31:]

    def hex_changed(h: str) -> str:
        return ("1" if h[0] != "1" else "2") + h[1:]

    altered = {
        "its entry hash": dict(r, entry_hash=hex_changed(r["entry_hash"])),
        "a proof hash": dict(r, inclusion=[hex_changed(r["inclusion"][0]), *r["inclusion"][1:]]),
        "the proof cut": dict(r, inclusion=r["inclusion"][:-1]),
        "its tree size": dict(r, tree_size=r["tree_size"] + 1),
        "its index": dict(r, index=r["index"] + 1),
        "its log": dict(r, log=r["log"] + "x"),
        "its checkpoint's root": dict(r, checkpoint=cp.replace(root_line, other_root)),
        "its checkpoint's signature": dict(r, checkpoint=f"{body}\n\n{other_sig}"),
    }
    for name, receipt in altered.items():
        cases.append((f"altered: {name}", {**d.raw, "receipt": receipt}, keys, None))
    changed = entry.replace('"amount":10', '"amount":11')
    assert changed != entry
    cases += [
        ("altered: the entry given", d.raw, keys, changed),
        ("another decision's entry given", {**evidence.decisions[1].raw, "receipt": r}, keys, entry),
        ("another key", d.raw, make_signer(42, "warden.local").verifier, None),
        ("as JSON text", json.dumps(d.raw), keys, None),
    ]
    seen = verify_receipts_in_browser(page, cases)
    for i, dec in enumerate(evidence.decisions):
        ok = seen[f"decision {i} with its entry"]["ok"]
        assert ok["entry_checked"] is True and ok["index"] == dec.receipt["index"]  # type: ignore[index]
        assert ok["signed_by"] and set(ok["signed_by"]) <= set(keys)
    assert all("ok" in seen[f"audit event {i}"] for i in range(len(evidence.audit_events)))
    # Receipts from before and after the rotation are signed by different keys.
    assert seen["decision 0"]["ok"]["signed_by"] != seen["decision 2"]["ok"]["signed_by"]
    assert seen["as JSON text"]["ok"] == seen["decision 0"]["ok"]
    for name, outcome in seen.items():
        if name.startswith("altered") or name in ("another decision's entry given", "another key"):
            assert "error" in outcome, f"{name}: accepted"
            index = r["index"] + 1 if name == "altered: its index" else r["index"]
            assert outcome["error"]["index"] == index, (name, outcome)
            assert outcome["error"]["message"].startswith(f"entry {index}: "), (name, outcome)


def test_a_real_consistency_proof(page: WebDriver, evidence: Evidence) -> None:
    admin, keys = evidence.admin, evidence.keys
    first = admin.checkpoint()
    admin.decide("verifytest/refunds", {"amount": 30})
    second = admin.checkpoint()
    view = admin.consistency(first["size"], second["size"])
    wrong = dict(view, proof=[("1" if h[0] != "1" else "2") + h[1:] for h in view["proof"]])
    out = run_js(
        page,
        """
        const [good, bad, keys] = args;
        const sizes = (o) => (o.ok ? {ok: o.ok.map((c) => [c.size, v.toHex(c.root)])} : o);
        return [sizes(await outcome(() => v.verifyConsistency(good, keys))), await outcome(() => v.verifyConsistency(bad, keys))];
        """,
        view,
        wrong,
        keys,
    )
    a, b = verify.verify_consistency(view, keys)
    assert out[0] == {"ok": [[a.size, a.root.hex()], [b.size, b.root.hex()]]}
    assert out[0]["ok"][1] == [second["size"], second["root"]]
    assert out[1]["verification"] is True and "consistency proof" in out[1]["error"]["message"]
    with pytest.raises(VerificationError):
        verify.verify_consistency(wrong, keys)


# ---- a large export ------------------------------------------------------------------------


def test_a_large_export_keeps_the_page_responsive(page: WebDriver) -> None:
    log = sample_log(6000, batch=50)
    data = log.export()
    key = log.signer.verifier
    out = run_js(
        page,
        """
        let ticks = 0;
        const timer = setInterval(() => { ticks += 1; }, 1);
        const calls = [];
        const started = performance.now();
        try {
          const report = await v.verifyExport(bytes(args[0]), args[1], (done, total) => calls.push([done, total]));
          return {report, calls, ticks, ms: performance.now() - started};
        } finally {
          clearInterval(timer);
        }
        """,
        b64(data),
        key,
    )
    assert out["report"] == dataclasses.asdict(verify.verify_export(data, key))
    calls = out["calls"]
    assert calls[0] == [0, 6000] and calls[-1] == [6000, 6000]
    assert len(calls) >= 4, calls
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:])), calls
    # The page's own timers ran while the file was being verified.
    assert out["ticks"] >= 1, out["ticks"]
