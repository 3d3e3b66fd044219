"""Append-only Merkle log hashing, proofs and verifiers (RFC 9162, section 2.1).

The evidence log commits to its entries with a Merkle tree hash so that a
partner holding a signed root can later check that one entry is in the log
(inclusion proof) and that a newer log only appended to an older one
(consistency proof), without trusting our database.

Everything here is pure: no database, no I/O. Trees are built over *leaf
hashes* (``leaf_hash(entry)``), which the store keeps per entry, so proofs
never need the entries themselves.

* :func:`root` hashes a whole list (O(n), iterative, no list slicing);
* :class:`Frontier` is the right edge of the tree (one hash per set bit of the
  size): the database keeps it serialised so appending a batch never rereads
  the log;
* :func:`inclusion_proof` / :func:`consistency_proof` are one-off O(n)
  generators; :class:`Tree` caches the levels when many proofs are needed;
* :func:`verify_inclusion` / :func:`verify_consistency` follow the RFC's
  verification algorithms and answer ``False``, never raise, on bad input,
  since their input comes from the other side of the border.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "Tree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Length in bytes of every hash here (SHA-256)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}): the root of the empty log."""

_LEAF = b"\x00"
_NODE = b"\x01"
_sha256 = hashlib.sha256
_MAX_SIZE = (1 << 64) - 1  # the serialised size is a uint64, as in RFC 9162 tree heads

_SubtreeHash = Callable[[int, int], bytes]


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry): the prefix keeps a leaf from posing as an inner node."""
    return _sha256(_LEAF + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return _sha256(_NODE + left + right).digest()


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_SIZE


def _check_hash(value: object, what: str = "leaf hash") -> None:
    if not _is_hash(value):
        raise ValueError(f"a {what} must be {HASH_SIZE} bytes")


def _check_leaves(leaf_hashes: Sequence[bytes]) -> None:
    # One wrong-length hash would silently yield a tree nobody else can reproduce.
    # (map over builtins: a third of the cost of a Python-level loop at 10**6 leaves)
    if set(map(type, leaf_hashes)) - {bytes} or set(map(len, leaf_hashes)) - {HASH_SIZE}:
        raise ValueError(f"every leaf hash must be {HASH_SIZE} bytes")


def _largest_power_of_two_below(n: int) -> int:
    """The RFC's split point k: the largest power of two strictly smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_root(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH(leaves[start:end]) level by level, without copying the leaf range.

    Pairing neighbours and carrying an odd last node up unchanged gives exactly
    the RFC's "split at the largest power of two" tree, in n - 1 hashes.
    """
    count = end - start
    if count <= 0:
        return EMPTY_ROOT
    if count == 1:
        return leaves[start]
    sha, node = _sha256, _NODE
    level = [sha(node + leaves[i] + leaves[i + 1]).digest() for i in range(start, end - 1, 2)]
    if count & 1:
        level.append(leaves[end - 1])
    while len(level) > 1:
        width = len(level)
        upper = [sha(node + level[i] + level[i + 1]).digest() for i in range(0, width - 1, 2)]
        if width & 1:
            upper.append(level[-1])
        level = upper
    return level[0]


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over already-hashed leaves (RFC 9162 2.1.1); O(n) time."""
    _check_leaves(leaf_hashes)
    return _range_root(leaf_hashes, 0, len(leaf_hashes))


# --- proof generation -------------------------------------------------------


def _inclusion_path(index: int, size: int, subtree: _SubtreeHash) -> list[bytes]:
    """PATH(m, D[n]) (RFC 9162 2.1.3.1), iteratively, leaf-side sibling first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    path: list[bytes] = []
    lo, hi = 0, size  # the subtree D[lo:hi] still holding the leaf
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo += k
    path.reverse()
    return path


def _consistency_path(old_size: int, new_size: int, subtree: _SubtreeHash) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true) (RFC 9162 2.1.4.1), iteratively."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []  # the empty tree is a prefix of every tree; a tree is its own prefix
    path: list[bytes] = []
    lo, hi = 0, new_size
    m = old_size  # leaves of the old tree inside D[lo:hi]
    whole = True  # the RFC's b: is D[lo:lo+m] still a subtree whose hash the verifier knows?
    while m != hi - lo:
        k = _largest_power_of_two_below(hi - lo)
        if m <= k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo += k
            m -= k
            whole = False
    if not whole:
        path.append(subtree(lo, hi))
    path.reverse()
    return path


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The audit path for leaf ``index`` in the tree of all ``leaf_hashes``.

    O(n): the siblings on the path cover every other leaf once. For several
    proofs over the same leaves, build a :class:`Tree` instead.
    """
    _check_leaves(leaf_hashes)
    return _inclusion_path(index, len(leaf_hashes), lambda a, b: _range_root(leaf_hashes, a, b))


def consistency_proof(old_size: int, new_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The proof that the first ``old_size`` leaves are a prefix of the first ``new_size``.

    ``leaf_hashes`` needs at least ``new_size`` entries; more are ignored. O(n).
    """
    _check_leaves(leaf_hashes)
    if new_size > len(leaf_hashes):
        raise ValueError(f"tree size {new_size} exceeds the {len(leaf_hashes)} leaves given")
    return _consistency_path(old_size, new_size, lambda a, b: _range_root(leaf_hashes, a, b))


class Tree:
    """All perfect-subtree hashes of a list of leaves, for many cheap proofs.

    ``levels[j][i]`` is the hash of leaves ``[i * 2**j, (i + 1) * 2**j)``. Every
    subtree the RFC's proofs ask for starts at a multiple of a power of two at
    least its size, so it is a right-to-left fold of at most log2(n) cached
    hashes: building costs n hashes once, then each root or proof at any size
    up to ``size`` costs O(log² n) lookups and O(log n) hashes.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes]) -> None:
        leaves = list(leaf_hashes)
        _check_leaves(leaves)
        levels = [leaves]
        sha, node = _sha256, _NODE
        while len(levels[-1]) > 1:
            below = levels[-1]
            levels.append(
                [sha(node + below[i] + below[i + 1]).digest() for i in range(0, len(below) - 1, 2)]
            )
        self._levels = levels

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def _subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]); falls back to hashing leaves for ranges no proof asks for."""
        count = end - start
        if count <= 0:
            return EMPTY_ROOT
        height = count.bit_length() - 1
        if count == 1 << height and start % count == 0:
            return self._levels[height][start >> height]
        k = _largest_power_of_two_below(count)
        if start % (k << 1):
            return _range_root(self._levels[0], start, end)
        return node_hash(self._subtree(start, start + k), self._subtree(start + k, end))

    def _check_size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} is not within the {self.size} leaves held")
        return size

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (all by default): a past tree head."""
        return self._subtree(0, self._check_size(size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Audit path for leaf ``index`` in the tree of the first ``size`` leaves."""
        return _inclusion_path(index, self._check_size(size), self._subtree)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Consistency proof from the first ``old_size`` to the first ``new_size`` leaves."""
        return _consistency_path(old_size, self._check_size(new_size), self._subtree)


# --- incremental state --------------------------------------------------------


class Frontier:
    """The right edge of the log: one perfect-subtree hash per set bit of ``size``.

    That is all an appender needs (RFC 9162 calls it a compact range over
    ``[0, size)``): ``append`` merges equal-sized subtrees like a binary carry,
    n - 1 hashes for n appends (O(1) amortised, O(log n) worst case), and
    ``root`` folds the at most 64 hashes right to left. Kept between
    transactions via :meth:`to_bytes` / :meth:`from_bytes`.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        stack = list(hashes)
        if not _is_size(size):
            raise ValueError(f"a log size must be an integer in [0, 2**64), not {size!r}")
        if len(stack) != size.bit_count():
            raise ValueError(f"a frontier of size {size} holds {size.bit_count()} hashes")
        for value in stack:
            _check_hash(value, "frontier hash")
        self._size = size
        self._hashes = stack  # largest (leftmost) subtree first

    @classmethod
    def from_leaf_hashes(cls, leaf_hashes: Sequence[bytes]) -> Frontier:
        """The frontier of a whole list of leaves, in n hashes."""
        _check_leaves(leaf_hashes)
        size = len(leaf_hashes)
        hashes: list[bytes] = []
        start = 0
        for bit in reversed(range(size.bit_length())):
            if size >> bit & 1:
                hashes.append(_range_root(leaf_hashes, start, start + (1 << bit)))
                start += 1 << bit
        return cls(size, hashes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The subtree hashes, leftmost (largest) first."""
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash (not an entry: hash it with :func:`leaf_hash` first)."""
        _check_hash(leaf_hash)
        if self._size == _MAX_SIZE:
            raise ValueError("the log is full")
        stack, carry, value = self._hashes, self._size, leaf_hash
        while carry & 1:
            value = _sha256(_NODE + stack.pop() + value).digest()
            carry >>= 1
        stack.append(value)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        for value in leaf_hashes:
            self.append(value)

    def root(self) -> bytes:
        """MTH of the log so far; O(log n)."""
        stack = self._hashes
        if not stack:
            return EMPTY_ROOT
        value = stack[-1]
        for i in range(len(stack) - 2, -1, -1):
            value = _sha256(_NODE + stack[i] + value).digest()
        return value

    def copy(self) -> Frontier:
        return Frontier(self._size, self._hashes)

    def to_bytes(self) -> bytes:
        """uint64 size (big-endian) followed by the subtree hashes, leftmost first."""
        return self._size.to_bytes(8, "big") + b"".join(self._hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> Frontier:
        if len(data) < 8:
            raise ValueError("a serialised frontier starts with an 8-byte size")
        size = int.from_bytes(data[:8], "big")
        body = data[8:]
        if len(body) != size.bit_count() * HASH_SIZE:
            raise ValueError(f"a frontier of size {size} holds {size.bit_count()} hashes")
        hashes = [bytes(body[i : i + HASH_SIZE]) for i in range(0, len(body), HASH_SIZE)]
        return cls(size, hashes)

    def to_hex(self) -> list[str]:
        """The subtree hashes in hex, leftmost first (the size is kept alongside)."""
        return [value.hex() for value in self._hashes]

    @classmethod
    def from_hex(cls, size: int, hashes: Iterable[str]) -> Frontier:
        return cls(size, [bytes.fromhex(value) for value in hashes])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frontier):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, root={self.root().hex()})"


# --- verification ------------------------------------------------------------


def _is_proof(proof: object) -> bool:
    return isinstance(proof, (list, tuple)) and all(_is_hash(p) for p in proof)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Does ``proof`` show leaf ``index`` with ``leaf_hash`` in the tree of ``size`` with ``root``?

    RFC 9162 2.1.3.2, step for step. Any malformed argument is a failed proof.
    """
    if not (
        _is_hash(leaf_hash)
        and _is_hash(root)
        and _is_size(index)
        and _is_size(size)
        and _is_proof(proof)
    ):
        return False
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False  # proof longer than the path
        if fn & 1 or fn == sn:
            r = _sha256(_NODE + p + r).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(_NODE + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Does ``proof`` show the tree (old_size, old_root) is a prefix of (new_size, new_root)?

    RFC 9162 2.1.4.2 for 0 < old_size < new_size. The edge cases the RFC leaves
    to the caller: equal sizes need an empty proof and equal roots; size 0
    needs an empty proof and the empty root (it is a prefix of anything).
    Any malformed argument is a failed proof.
    """
    if not (
        _is_size(old_size)
        and _is_size(new_size)
        and _is_hash(old_root)
        and _is_hash(new_root)
        and _is_proof(proof)
    ):
        return False
    if old_size > new_size:
        return False
    if old_size == 0:
        # Anything extends the empty log; only an empty new log pins its root too.
        empty_ok = new_size > 0 or new_root == EMPTY_ROOT
        return len(proof) == 0 and old_root == EMPTY_ROOT and empty_ok
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    if len(proof) == 0:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)  # the old tree is a subtree the proof does not repeat
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _sha256(_NODE + c + fr).digest()
            sr = _sha256(_NODE + c + sr).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _sha256(_NODE + sr + c).digest()
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
