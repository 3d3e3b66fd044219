"""The evidence log's Merkle tree: roots, the frontier, proofs and their verifiers.

Expectations come from the CT reference implementation's published 8-leaf
vectors and from a deliberately naive recursive transcription of RFC 9162
section 2.1 below (MTH, PATH, PROOF), which shares no code with the module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenlane.trust import merkle
from greenlane.trust.merkle import (
    EMPTY_ROOT,
    Frontier,
    Tree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# --- reference: RFC 9162 2.1 written out literally --------------------------


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    """MTH over leaf *hashes* (the RFC hashes entries; the store keeps their leaf hashes)."""
    n = len(d)
    if n == 0:
        return _sha(b"")
    if n == 1:
        return d[0]
    k = _split(n)
    return _sha(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _split(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True) if 0 < m < len(d) else []


def ref_shape(m: int, n: int) -> list[bool]:
    """For each step of PATH(m, D[n]): is the sibling on the right?"""
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*ref_shape(m, k), True]
    return [*ref_shape(m - k, n - k), False]


# --- fixtures ------------------------------------------------------------------

MAX_LEAVES = 3000
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(MAX_LEAVES)]
TREE = Tree(LEAVES)


def _flip(value: bytes, position: int = 0) -> bytes:
    i = position % len(value)
    return value[:i] + bytes([value[i] ^ 0x01]) + value[i + 1 :]


# --- known answers -------------------------------------------------------------

CT_ENTRIES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_LEAVES = [leaf_hash(e) for e in CT_ENTRIES]
# Roots of the first 1..8 entries, from the CT reference implementation's tests.
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
_H1 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
_H23 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
_H47 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
_H45 = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
_H67 = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root([]) == EMPTY_ROOT
    assert Frontier().root() == EMPTY_ROOT
    assert Tree([]).root() == EMPTY_ROOT


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"") == bytes.fromhex(CT_ROOTS[0])
    assert merkle.node_hash(CT_LEAVES[0], CT_LEAVES[1]) == bytes.fromhex(CT_ROOTS[1])
    assert leaf_hash(CT_LEAVES[0] + CT_LEAVES[1]) != merkle.node_hash(CT_LEAVES[0], CT_LEAVES[1])


@pytest.mark.parametrize("size", range(1, 9))
def test_ct_reference_roots(size: int) -> None:
    expected = bytes.fromhex(CT_ROOTS[size - 1])
    assert root(CT_LEAVES[:size]) == expected
    assert ref_mth(CT_LEAVES[:size]) == expected
    assert Frontier.from_leaf_hashes(CT_LEAVES[:size]).root() == expected
    assert Tree(CT_LEAVES).root(size) == expected


@pytest.mark.parametrize(
    ("kind", "old", "expected"),
    [
        ("inclusion", 0, [_H1, _H23, _H47]),
        ("consistency", 1, [_H1, _H23, _H47]),
        ("consistency", 6, [_H45, _H67, CT_ROOTS[3]]),
    ],
)
def test_ct_reference_proofs(kind: str, old: int, expected: list[str]) -> None:
    want = [bytes.fromhex(h) for h in expected]
    new_root = bytes.fromhex(CT_ROOTS[7])
    if kind == "inclusion":
        assert inclusion_proof(old, CT_LEAVES) == want
        assert verify_inclusion(CT_LEAVES[old], old, 8, want, new_root)
    else:
        assert consistency_proof(old, 8, CT_LEAVES) == want
        old_root = bytes.fromhex(CT_ROOTS[old - 1])
        assert verify_consistency(old, 8, old_root, new_root, want)


# --- roots and the frontier ----------------------------------------------------


def test_every_size_agrees_with_reference_frontier_and_tree() -> None:
    frontier = Frontier()
    for size in range(200):
        expected = ref_mth(LEAVES[:size])
        assert root(LEAVES[:size]) == expected
        assert frontier.root() == expected
        assert TREE.root(size) == expected
        assert frontier == Frontier.from_leaf_hashes(LEAVES[:size])
        frontier.append(LEAVES[size])
    for size in range(200, MAX_LEAVES):
        assert frontier.size == size
        assert frontier.root() == TREE.root(size)
        frontier.append(LEAVES[size])
    assert frontier.root() == root(LEAVES) == TREE.root()


@settings(max_examples=40)
@given(st.integers(0, MAX_LEAVES), st.integers(0, MAX_LEAVES))
def test_frontier_survives_storage_between_batches(first: int, second: int) -> None:
    """The database keeps the frontier, not the log: resuming from it changes nothing."""
    cut, end = sorted((first, second))
    frontier = Frontier()
    frontier.extend(LEAVES[:cut])
    assert len(frontier.hashes) == cut.bit_count()
    resumed = Frontier.from_bytes(frontier.to_bytes())
    from_hex = Frontier.from_hex(frontier.size, frontier.to_hex())
    assert resumed == from_hex == frontier
    resumed.extend(LEAVES[cut:end])
    assert resumed.size == end
    assert resumed.root() == root(LEAVES[:end])
    assert frontier.size == cut  # untouched


def test_frontier_copy_is_independent() -> None:
    frontier = Frontier.from_leaf_hashes(LEAVES[:5])
    clone = frontier.copy()
    clone.append(LEAVES[5])
    assert frontier.size == 5
    assert clone.root() == root(LEAVES[:6])


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 7,
        (1).to_bytes(8, "big"),  # size 1 but no hash
        (1).to_bytes(8, "big") + b"\x00" * 31,
        (1).to_bytes(8, "big") + b"\x00" * 64,  # one hash too many
        (3).to_bytes(8, "big") + b"\x00" * 32,
    ],
)
def test_frontier_rejects_malformed_state(data: bytes) -> None:
    with pytest.raises(ValueError, match="frontier"):
        Frontier.from_bytes(data)


def test_frontier_rejects_bad_hashes_and_sizes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Frontier().append(b"entry, not its hash")
    with pytest.raises(ValueError, match="holds 2 hashes"):
        Frontier(3, [LEAVES[0]])
    with pytest.raises(ValueError, match="log size"):
        Frontier(-1)
    with pytest.raises(ValueError, match="32 bytes"):
        root([LEAVES[0], b"short"])
    with pytest.raises(ValueError, match="32 bytes"):
        Tree(["x" * 32])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="32 bytes"):
        inclusion_proof(0, [bytearray(32)])  # type: ignore[list-item]


# --- inclusion -------------------------------------------------------------------


def test_inclusion_proofs_match_reference_for_small_trees() -> None:
    for size in range(1, 40):
        tree = Tree(LEAVES[:size])
        size_root = ref_mth(LEAVES[:size])
        for index in range(size):
            proof = ref_path(index, LEAVES[:size])
            assert inclusion_proof(index, LEAVES[:size]) == proof
            assert tree.inclusion_proof(index) == proof
            assert TREE.inclusion_proof(index, size) == proof
            assert verify_inclusion(LEAVES[index], index, size, proof, size_root)


@settings(max_examples=80)
@given(st.integers(1, MAX_LEAVES).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_inclusion_proof_verifies_and_tampering_fails(case: tuple[int, int]) -> None:
    size, index = case
    size_root = TREE.root(size)
    proof = TREE.inclusion_proof(index, size)
    assert proof == inclusion_proof(index, LEAVES[:size])
    assert verify_inclusion(LEAVES[index], index, size, proof, size_root)

    other = LEAVES[(index + 1) % MAX_LEAVES]
    assert not verify_inclusion(other, index, size, proof, size_root)
    assert not verify_inclusion(LEAVES[index], index, size, proof, _flip(size_root))
    for wrong in {index - 1, index + 1, index ^ 1, size} - {index}:
        assert not verify_inclusion(LEAVES[index], wrong, size, proof, size_root)
    for i in range(len(proof)):
        for position in (0, 31):
            bad = [*proof[:i], _flip(proof[i], position), *proof[i + 1 :]]
            assert not verify_inclusion(LEAVES[index], index, size, bad, size_root)
        assert not verify_inclusion(LEAVES[index], index, size, proof[:i], size_root)
    assert not verify_inclusion(LEAVES[index], index, size, [*proof, size_root], size_root)
    assert not verify_inclusion(LEAVES[index], index, size, [size_root, *proof], size_root)


@settings(max_examples=80)
@given(st.integers(1, 200), st.integers(1, 200), st.data())
def test_a_wrong_size_fails_unless_the_path_has_the_same_shape(
    size: int, wrong: int, data: st.DataObject
) -> None:
    """The proof alone binds the size only through the path's shape (RFC 9162 verifier).

    A claimed (size, root) pair is a signed tree head, so the signature is what
    binds them; the verifier can only refuse a size whose path differs.
    """
    index = data.draw(st.integers(0, size - 1))
    proof = TREE.inclusion_proof(index, size)
    size_root = TREE.root(size)
    same_shape = index < wrong and ref_shape(index, wrong) == ref_shape(index, size)
    assert verify_inclusion(LEAVES[index], index, wrong, proof, size_root) == same_shape


def test_inclusion_proof_generation_rejects_bad_requests() -> None:
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_proof(3, LEAVES[:3])
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_proof(0, [])
    with pytest.raises(ValueError, match="not within"):
        Tree(LEAVES[:3]).inclusion_proof(0, 4)


# --- consistency -------------------------------------------------------------------

SMALL = 70


def test_every_consistency_proof_up_to_70_leaves_verifies_and_tampering_fails() -> None:
    roots = [TREE.root(n) for n in range(SMALL + 1)]
    junk = LEAVES[-1]
    for new in range(SMALL + 1):
        for old in range(new + 1):
            proof = TREE.consistency_proof(old, new)
            assert proof == consistency_proof(old, new, LEAVES[:new])
            if new <= 24:  # the literal reference is slow; its shape is size-independent
                assert proof == ref_proof(old, LEAVES[:new])
            old_root, new_root = roots[old], roots[new]
            assert verify_consistency(old, new, old_root, new_root, proof), (old, new)

            assert not verify_consistency(old, new, _flip(old_root), new_root, proof)
            if old > 0:  # everything extends the empty log
                assert not verify_consistency(old, new, old_root, _flip(new_root), proof)
            for i in range(len(proof)):
                bad = [*proof[:i], _flip(proof[i], i), *proof[i + 1 :]]
                assert not verify_consistency(old, new, old_root, new_root, bad)
                dropped = proof[:i] + proof[i + 1 :]
                assert not verify_consistency(old, new, old_root, new_root, dropped)
            for extra in (junk, old_root, new_root):
                longer = [*proof, extra]
                assert not verify_consistency(old, new, old_root, new_root, longer)
                assert not verify_consistency(old, new, old_root, new_root, [extra, *proof])
            if old != new:
                assert not verify_consistency(new, old, new_root, old_root, proof)


@settings(max_examples=60)
@given(st.integers(0, MAX_LEAVES), st.integers(0, MAX_LEAVES))
def test_consistency_proofs_in_larger_trees(first: int, second: int) -> None:
    old, new = sorted((first, second))
    proof = TREE.consistency_proof(old, new)
    assert proof == consistency_proof(old, new, LEAVES)
    assert len(proof) <= 2 * max(new, 1).bit_length()
    old_root, new_root = TREE.root(old), TREE.root(new)
    assert verify_consistency(old, new, old_root, new_root, proof)
    if proof:
        assert not verify_consistency(old, new, old_root, new_root, proof[:-1])
        assert not verify_consistency(old, new, old_root, new_root, [_flip(proof[0]), *proof[1:]])
    if 0 < old < new:
        assert not verify_consistency(old, new, old_root, TREE.root(new - 1), proof)
        assert not verify_consistency(old, new, TREE.root(old - 1), new_root, proof)


def test_consistency_edge_cases() -> None:
    r3 = TREE.root(3)
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, r3, [])
    assert verify_consistency(0, 3, EMPTY_ROOT, r3, [])
    assert not verify_consistency(0, 3, r3, r3, [])
    assert verify_consistency(3, 3, r3, r3, [])
    assert not verify_consistency(3, 3, r3, r3, [r3])
    assert not verify_consistency(3, 3, r3, TREE.root(2), [])
    assert not verify_consistency(3, 5, r3, TREE.root(5), [])
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof(4, 3, LEAVES)
    with pytest.raises(ValueError, match="exceeds"):
        consistency_proof(1, 4, LEAVES[:3])
    with pytest.raises(ValueError, match="not within"):
        TREE.consistency_proof(1, MAX_LEAVES + 1)


# --- the Tree's cache --------------------------------------------------------------


@settings(max_examples=60)
@given(st.integers(0, 300), st.integers(0, 300))
def test_tree_subtree_hash_is_mth_of_any_range(first: int, second: int) -> None:
    """Even ranges no RFC proof asks for (unaligned) hash correctly, just slower."""
    start, end = sorted((first, second))
    assert TREE._subtree(start, end) == ref_mth(LEAVES[start:end])


# --- verifiers never raise -----------------------------------------------------------

_anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.binary(max_size=40),
    st.text(max_size=5),
    st.lists(st.binary(max_size=40), max_size=6),
    st.lists(st.integers(), max_size=3),
    st.floats(),
)
_hash_or_garbage = st.one_of(st.binary(min_size=32, max_size=32), _anything)
_size_or_garbage = st.one_of(st.integers(0, 2**64 + 2), _anything)
_proof_or_garbage = st.one_of(
    st.lists(st.binary(min_size=31, max_size=33), max_size=70),
    st.lists(st.sampled_from(LEAVES[:4]), max_size=70),
    _anything,
)


@settings(max_examples=150)
@given(_hash_or_garbage, _size_or_garbage, _size_or_garbage, _proof_or_garbage, _hash_or_garbage)
def test_verify_inclusion_never_raises(
    leaf: object, index: object, size: object, proof: object, claimed: object
) -> None:
    result = verify_inclusion(leaf, index, size, proof, claimed)  # type: ignore[arg-type]
    assert result is False or result is True
    if isinstance(index, int) and isinstance(size, int) and index >= size:
        assert result is False


@settings(max_examples=150)
@given(_size_or_garbage, _size_or_garbage, _hash_or_garbage, _hash_or_garbage, _proof_or_garbage)
def test_verify_consistency_never_raises(
    old: object, new: object, old_root: object, new_root: object, proof: object
) -> None:
    result = verify_consistency(old, new, old_root, new_root, proof)  # type: ignore[arg-type]
    assert result is False or result is True
    if isinstance(old, int) and isinstance(new, int) and old > new:
        assert result is False


@pytest.mark.parametrize(
    "args",
    [
        (LEAVES[0], 0, 0, [], EMPTY_ROOT),  # empty tree holds nothing
        (LEAVES[0], -1, 1, [], LEAVES[0]),
        (LEAVES[0], True, 2, [LEAVES[1]], TREE.root(2)),  # bool is not an index
        (LEAVES[0][:31], 0, 1, [], LEAVES[0][:31]),
        (LEAVES[0], 0, 2, [LEAVES[1] + b"\x00"], TREE.root(2)),
        (LEAVES[0], 0, 2, (p for p in [LEAVES[1]]), TREE.root(2)),
        (bytearray(LEAVES[0]), 0, 1, [], LEAVES[0]),
        (LEAVES[0], 0, 2**64, [LEAVES[1]], TREE.root(2)),
        (LEAVES[0], 0, 2**200, [LEAVES[1]] * 300, TREE.root(2)),
    ],
)
def test_verify_inclusion_refuses_malformed_input(args: tuple[object, ...]) -> None:
    assert verify_inclusion(*args) is False  # type: ignore[arg-type]


def test_valid_single_leaf_and_pair_for_contrast() -> None:
    assert verify_inclusion(LEAVES[0], 0, 1, [], LEAVES[0])
    assert verify_inclusion(LEAVES[0], 0, 2, [LEAVES[1]], TREE.root(2))
    assert verify_inclusion(LEAVES[0], 0, 2, (LEAVES[1],), TREE.root(2))
