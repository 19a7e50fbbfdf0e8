"""Offline verification of receipts and export files, good and tampered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ledgerkit import Log, make_signer, rotated_log, sample_log

from warden import VerificationError, merkle, verify
from warden.__main__ import main as cli_main


def lines_of(data: bytes) -> list[bytes]:
    return data.split(b"\n")[:-1]


def join(lines: list[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n"


def line_of_entry(data: bytes, index: int) -> int:
    """The 0-based line number of entry `index` in an export."""
    for n, line in enumerate(lines_of(data)):
        if line.startswith(b'{"actor":') and json.loads(line)["index"] == index:
            return n
    raise AssertionError(f"entry {index} not in export")


# ---- receipts ------------------------------------------------------------------


def test_receipt_verifies_and_checks_entry_bytes() -> None:
    log = sample_log(7, batch=3)
    key = log.signer.verifier
    r = log.receipt(4)
    report = verify.verify_receipt({"decision_id": "dec_04", "receipt": r}, key, entry=log.entries[4])
    assert (report.index, report.tree_size, report.entry_checked) == (4, 7, True)
    assert report.root == merkle.root(log.leaves).hex()
    # the receipt on its own, and keys as Client.ledger_keys() returns them
    verify.verify_receipt(r, [{"verifier": key, "current": True}])


def test_receipt_for_every_index_and_size() -> None:
    log = Log("warden.test/log/t", make_signer())
    for i in range(9):
        log.append("decision", {"n": i})
        log.seal()
    for size in range(1, 10):
        for index in range(size):
            verify.verify_receipt(log.receipt(index, size), log.signer.verifier)


def test_receipt_with_truncated_proof_fails_naming_the_entry() -> None:
    log = sample_log(7, batch=7)
    r = log.receipt(2)
    r["inclusion"] = r["inclusion"][:-1]
    with pytest.raises(VerificationError) as e:
        verify.verify_receipt(r, log.signer.verifier)
    assert e.value.index == 2
    assert "inclusion proof" in str(e.value) and str(e.value).startswith("entry 2")


def test_receipt_with_wrong_entry_hash() -> None:
    log = sample_log(5, batch=5)
    r = log.receipt(3)
    r["entry_hash"] = log.leaves[2].hex()
    with pytest.raises(VerificationError) as e:
        verify.verify_receipt(r, log.signer.verifier)
    assert e.value.index == 3


def test_receipt_with_wrong_key() -> None:
    log = sample_log(5, batch=5)
    with pytest.raises(VerificationError) as e:
        verify.verify_receipt(log.receipt(1), make_signer(9).verifier)
    assert e.value.index == 1 and "no trusted key" in str(e.value)


def test_receipt_tampered_entry_bytes() -> None:
    log = sample_log(5, batch=5)
    tampered = log.entries[3].replace(b'"allow":false', b'"allow":true ', 1)
    assert tampered != log.entries[3]
    with pytest.raises(VerificationError) as e:
        verify.verify_receipt(log.receipt(3), log.signer.verifier, entry=tampered)
    assert e.value.index == 3
    flipped = log.entries[3].replace(b"dec_03", b"dec_13")
    with pytest.raises(VerificationError, match="do not hash"):
        verify.verify_receipt(log.receipt(3), log.signer.verifier, entry=flipped)


def test_receipt_checkpoint_of_other_size_or_log() -> None:
    log = sample_log(6, batch=2)
    r = log.receipt(1, 4)
    r["tree_size"] = 6
    with pytest.raises(VerificationError, match="tree size"):
        verify.verify_receipt(r, log.signer.verifier)
    r = log.receipt(1, 4)
    r["log"] = "warden.test/log/other"
    with pytest.raises(VerificationError, match="log"):
        verify.verify_receipt(r, log.signer.verifier)


def test_decision_without_receipt() -> None:
    with pytest.raises(VerificationError, match="no receipt"):
        verify.verify_receipt({"decision_id": "d", "receipt": None}, make_signer().verifier)


# ---- exports --------------------------------------------------------------------


def test_export_verifies_from_bytes_path_and_lines(tmp_path: Path) -> None:
    log = sample_log(9, batch=2)
    data = log.export()
    key = log.signer.verifier
    r1 = verify.verify_export(data, key)
    assert (r1.entries, r1.tree_size, r1.root) == (9, 9, merkle.root(log.leaves).hex())
    assert r1.kinds == {"tenant.create": 1, "decision": 8}
    p = tmp_path / "e.ndjson"
    p.write_bytes(data)
    assert verify.verify_export(p, key) == r1
    assert verify.verify_export(str(p), key) == r1
    assert verify.verify_export(data.decode().splitlines(), key) == r1
    with open(p, "rb") as f:
        assert verify.verify_export(f, key) == r1


def test_export_from_the_middle_of_a_log() -> None:
    log = sample_log(11, batch=2)
    for start in (1, 2, 3, 4, 5, 6, 7):
        data = log.export(start)
        report = verify.verify_export(data, log.signer.verifier)
        assert (report.from_index, report.to_index) == (start, 11)
        assert report.root == merkle.root(log.leaves).hex()


def test_flipped_payload_byte_names_the_entry() -> None:
    log = sample_log(8, batch=2)
    data = log.export()
    lines = lines_of(data)
    n = line_of_entry(data, 5)
    lines[n] = lines[n].replace(b'"decision_id":"dec_05"', b'"decision_id":"dec_0X"')
    with pytest.raises(VerificationError) as e:
        verify.verify_export(join(lines), log.signer.verifier)
    # entry 5's own bytes are canonical; its change shows as the next entry's prev
    assert e.value.index in (5, 6)
    assert e.value.line is not None


def test_flipped_byte_in_last_entry_is_caught_by_the_checkpoint() -> None:
    log = sample_log(8, batch=8)
    data = log.export()
    lines = lines_of(data)
    n = line_of_entry(data, 7)
    lines[n] = lines[n].replace(b"dec_07", b"dec_77")
    with pytest.raises(VerificationError) as e:
        verify.verify_export(join(lines), log.signer.verifier)
    assert e.value.index == 7 and "root" in e.value.reason


def test_every_single_byte_flip_is_refused() -> None:
    log = sample_log(4, batch=2)
    data = log.export()
    header_end = data.index(b"\n") + 1
    for pos in range(header_end, len(data) - 1, 7):
        b = data[pos]
        if b == 0x0A:
            continue
        flipped = data[:pos] + bytes([b ^ 0x01]) + data[pos + 1 :]
        with pytest.raises(VerificationError):
            verify.verify_export(flipped, log.signer.verifier)


def test_reordered_entries_name_the_index() -> None:
    log = sample_log(8, batch=8)
    data = log.export()
    lines = lines_of(data)
    a, b = line_of_entry(data, 3), line_of_entry(data, 4)
    lines[a], lines[b] = lines[b], lines[a]
    with pytest.raises(VerificationError) as e:
        verify.verify_export(join(lines), log.signer.verifier)
    assert e.value.index == 3 and "expected 3" in e.value.reason


def test_missing_entry() -> None:
    log = sample_log(8, batch=8)
    data = log.export()
    lines = lines_of(data)
    del lines[line_of_entry(data, 6)]
    with pytest.raises(VerificationError) as e:
        verify.verify_export(join(lines), log.signer.verifier)
    assert e.value.index == 6


def test_non_canonical_entry_is_refused() -> None:
    log = sample_log(4, batch=4)
    data = log.export()
    lines = lines_of(data)
    n = line_of_entry(data, 2)
    obj = json.loads(lines[n])
    # same content, written with a space: another byte string for the same object
    lines[n] = json.dumps(obj, separators=(",", ": "), sort_keys=True).encode()
    with pytest.raises(VerificationError) as e:
        verify.verify_export(join(lines), log.signer.verifier)
    assert e.value.index == 2 and "canonical" in e.value.reason


def test_wrong_key() -> None:
    log = sample_log(4, batch=2)
    with pytest.raises(VerificationError) as e:
        verify.verify_export(log.export(), make_signer(5).verifier)
    assert e.value.index == 1 and "not a trusted key" in e.value.reason


def test_forged_signature() -> None:
    log = sample_log(4, batch=2)
    data = log.export().decode()
    # replace the last checkpoint's signature with one by an unknown key of the same name
    forger = make_signer(5)
    good_sig_line = log.checkpoints[-1][1].split("\n\n")[1]
    bad_sig_line = log.checkpoints[-1][1].split("\n\n")[0] + "\n"
    from warden import note

    forged = note.sign_note(bad_sig_line, forger.name, forger.key)
    data = data.replace(
        json.dumps(good_sig_line, ensure_ascii=False)[1:-1], json.dumps(forged, ensure_ascii=False)[1:-1]
    )
    with pytest.raises(VerificationError) as e:
        verify.verify_export(data.encode(), log.signer.verifier)
    assert e.value.index == 3


def test_truncated_export() -> None:
    log = sample_log(6, batch=2)
    lines = lines_of(log.export())
    with pytest.raises(VerificationError, match="promises"):
        verify.verify_export(join(lines[:-3]), log.signer.verifier)
    with pytest.raises(VerificationError, match="not covered by a checkpoint"):
        verify.verify_export(join(lines[:-1]), log.signer.verifier)
    with pytest.raises(VerificationError, match="newline"):
        verify.verify_export(join(lines)[:-1], log.signer.verifier)


def test_header_faults() -> None:
    log = sample_log(4, batch=2)
    lines = lines_of(log.export(2))
    header = json.loads(lines[0])
    for change in (
        {"format": "warden-ledger-export/2"},
        {"frontier": []},
        {"prev": "1" * 64},
        {"from": 4},
    ):
        bad = dict(header, **change)
        with pytest.raises(VerificationError) as e:
            verify.verify_export(join([json.dumps(bad).encode(), *lines[1:]]), log.signer.verifier)
        assert e.value.line == 1 or e.value.index is not None


def test_too_deep_entry_is_named() -> None:
    log = Log("warden.test/log/t", make_signer())
    log.append("x", {"ok": True})
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    log.append("x", deep)  # payload of 100 levels: allowed
    log.seal()
    verify.verify_export(log.export(), log.signer.verifier)
    log2 = Log("warden.test/log/t", make_signer())
    log2.append("x", [deep])  # 101 levels: too deep
    log2.seal()
    with pytest.raises(VerificationError) as e:
        verify.verify_export(log2.export(), log2.signer.verifier)
    assert e.value.index == 0 and "too deep" in e.value.reason


# ---- key rotation ---------------------------------------------------------------


def test_rotation_trusting_either_key() -> None:
    log, old, new = rotated_log()
    data = log.export()
    for key in (old, new):
        report = verify.verify_export(data, key)
        assert report.rotations == [2]
        assert set(report.keys) == {old, new}


def test_rotation_handover_not_cosigned() -> None:
    log, old, new = rotated_log()
    # re-sign the handover checkpoint (size 3) with the new key alone
    size, text = log.checkpoints[1]
    from ledgerkit import checkpoint_text

    log.checkpoints[1] = (size, checkpoint_text(log.origin, size, merkle.root(log.leaves[:3]), [make_signer(2)]))
    with pytest.raises(VerificationError) as e:
        verify.verify_export(log.export(), old)
    assert e.value.index == 2 and "both" in e.value.reason


def test_checkpoint_after_rotation_signed_by_retired_key_only() -> None:
    log, old, new = rotated_log()
    from ledgerkit import checkpoint_text

    size = log.checkpoints[2][0]
    log.checkpoints[2] = (size, checkpoint_text(log.origin, size, merkle.root(log.leaves[:size]), [make_signer(1)]))
    with pytest.raises(VerificationError) as e:
        verify.verify_export(log.export(), old)
    assert e.value.index == size - 1 and "retired" in e.value.reason


def test_rotation_to_an_untrusted_chain() -> None:
    log, old, new = rotated_log()
    with pytest.raises(VerificationError, match="not a trusted key"):
        verify.verify_export(log.export(), make_signer(3).verifier)


# ---- keys and the command line -----------------------------------------------------


def test_parse_key_refusals() -> None:
    good = make_signer().verifier
    name, kid, b64 = good.split("+", 2)
    for bad in ("nope", f"{name}+{kid}", f"{name}+00000000+{b64}", f"{name}+{kid}+AA==", f"a b+{kid}+{b64}"):
        with pytest.raises(ValueError):
            verify.parse_key(bad)
    assert verify.parse_key(good).key_id_hex == kid


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = sample_log(5, batch=2)
    p = tmp_path / "e.ndjson"
    p.write_bytes(log.export())
    assert cli_main(["verify", str(p), "--key", log.signer.verifier]) == 0
    assert "ok:" in capsys.readouterr().out
    p.write_bytes(log.export().replace(b"dec_02", b"dec_22"))
    assert cli_main(["verify", str(p), "--key", log.signer.verifier]) == 1
    assert "entry 2" in capsys.readouterr().err
    rp = tmp_path / "d.json"
    rp.write_text(json.dumps({"decision_id": "dec_01", "receipt": log.receipt(1)}))
    assert cli_main(["verify-receipt", str(rp), "--key", log.signer.verifier]) == 0
