# Memory tiers: codecs that move real bytes, and the residency policies that
# decide where a region lives. RegionManager (region.py) does the moving and
# witnesses each move (TIER_MOVE); this module holds no region state.
#
#   HOT      resident in the arena, read/write for its owner
#   WARM     resident, shared read-only into several partitions
#   DORMANT  compressed in RAM (deflate where the port can compress, else RLE),
#            arena block freed
#   COLD     written to flash as a region checkpoint, freed from RAM
#
# Policies (Tock style: mechanism in the kernel, policy is an object):
#   StaticTierPolicy  idle-time thresholds, used when the coherence engine
#                     is absent (DC-1).
#   ScoredTierPolicy  residency score = recency (0..100) + the engine's cut
#                     value for the owning partition (0..100, weighted);
#                     thresholds on the score.
from .compat import const, ticks_diff

HOT = const(0)
WARM = const(1)
DORMANT = const(2)
COLD = const(3)
TIER_NAMES = ("hot", "warm", "dormant", "cold")

CODEC_RAW = const(0)
CODEC_RLE = const(1)
CODEC_DEFLATE = const(2)  # raw deflate stream (no zlib header)
CODEC_NAMES = ("raw", "rle", "deflate")


# ---- RLE (PackBits-like): portable, no dependencies ------------------------
#   control c < 128 : c+1 literal bytes follow
#   control c >= 128: the next byte repeats c-125 times (3..130)
def rle_encode(data):
    n = len(data)
    out = bytearray()
    i = 0
    lit = 0  # start of the pending literal run
    while i < n:
        b = data[i]
        j = i + 1
        while j < n and j - i < 130 and data[j] == b:
            j += 1
        r = j - i
        if r >= 3:
            while lit < i:
                k = i - lit if i - lit < 128 else 128
                out.append(k - 1)
                out.extend(data[lit:lit + k])
                lit += k
            out.append(r + 125)
            out.append(b)
            i = j
            lit = i
        else:
            i = j
    while lit < n:
        k = n - lit if n - lit < 128 else 128
        out.append(k - 1)
        out.extend(data[lit:lit + k])
        lit += k
    return bytes(out)


def rle_decode_into(blob, out):
    """Decode into `out` (bytearray/memoryview of the exact size).
    Returns the number of bytes produced (-1 when the blob is malformed)."""
    i = 0
    o = 0
    n = len(blob)
    cap = len(out)
    while i < n:
        c = blob[i]
        i += 1
        if c < 128:
            k = c + 1
            if i + k > n or o + k > cap:
                return -1
            out[o:o + k] = blob[i:i + k]
            i += k
            o += k
        else:
            k = c - 125
            if i >= n or o + k > cap:
                return -1
            b = blob[i]
            i += 1
            for _ in range(k):
                out[o] = b
                o += 1
    return o


# ---- deflate: zlib on CPython, deflate.DeflateIO where the port compresses --
_deflate_ok = None


def _zlib():
    try:
        import zlib
        if hasattr(zlib, "compressobj"):
            return zlib
    except ImportError:
        pass
    return None


def can_deflate():
    """True when this runtime can compress with deflate (detected once)."""
    global _deflate_ok
    if _deflate_ok is None:
        ok = _zlib() is not None
        if not ok:
            try:
                import deflate
                import io
                d = deflate.DeflateIO(io.BytesIO(), deflate.RAW)
                ok = hasattr(d, "write")
                if ok:
                    d.write(b"x")
                    d.close()
            except (ImportError, AttributeError, OSError):
                ok = False
        _deflate_ok = ok
    return _deflate_ok


def deflate_encode(data):
    z = _zlib()
    if z is not None:
        c = z.compressobj(6, z.DEFLATED, -15)
        return c.compress(bytes(data)) + c.flush()
    import deflate
    import io
    buf = io.BytesIO()
    d = deflate.DeflateIO(buf, deflate.RAW)
    d.write(data)
    d.close()
    return buf.getvalue()


def deflate_decode_into(blob, out):
    z = _zlib()
    if z is not None:
        try:
            raw = z.decompressobj(-15).decompress(bytes(blob))
        except Exception:  # zlib.error: malformed stream
            return -1
        if len(raw) != len(out):
            return -1
        out[0:len(raw)] = raw
        return len(raw)
    try:
        import deflate
        import io
        d = deflate.DeflateIO(io.BytesIO(blob), deflate.RAW)
        n = d.readinto(out)
    except (ImportError, OSError, ValueError):
        return -1
    return n if n is not None else -1


def best_codec():
    return CODEC_DEFLATE if can_deflate() else CODEC_RLE


def encode(codec, data):
    if codec == CODEC_DEFLATE:
        return deflate_encode(data)
    if codec == CODEC_RLE:
        return rle_encode(data)
    return bytes(data)


def decode_into(codec, blob, out):
    """Decode `blob` into `out`; returns bytes produced or -1."""
    if codec == CODEC_DEFLATE:
        return deflate_decode_into(blob, out)
    if codec == CODEC_RLE:
        return rle_decode_into(blob, out)
    if len(blob) != len(out):
        return -1
    out[0:len(blob)] = blob
    return len(blob)


# ---- policies ---------------------------------------------------------------
class StaticTierPolicy:
    """Idle-time thresholds (coherence engine absent). A region idle for
    dormant_after_ms goes dormant, for cold_after_ms goes cold; any access
    brings it back hot (RegionManager faults it in)."""

    def __init__(self, dormant_after_ms=2000, cold_after_ms=10000):
        self.dormant_after_ms = dormant_after_ms
        self.cold_after_ms = cold_after_ms

    def score(self, region, now):
        idle = ticks_diff(now, region.last_use)
        if idle < 0:
            idle = 0
        return recency(idle, self.dormant_after_ms)

    def decide(self, region, now):
        idle = ticks_diff(now, region.last_use)
        if idle >= self.cold_after_ms:
            return COLD
        if idle >= self.dormant_after_ms:
            return DORMANT
        return HOT


def recency(idle_ms, half_ms):
    """0..100: 100 just used, 50 after half_ms idle, towards 0 after."""
    if half_ms <= 0:
        return 0
    return (100 * half_ms) // (half_ms + idle_ms)


class ScoredTierPolicy:
    """Residency score = recency(idle, half_ms) + weight% of the coherence
    engine's cut value (0..100) for the region's owner. A partition the
    engine sees as strongly coupled keeps its regions resident longer.
    `cut_value(pid)` is supplied by the engine; an engine failure (it
    raises or returns None) counts as 0, so the kernel keeps working."""

    def __init__(self, cut_value, half_ms=2000, weight=50, dormant_below=30,
                 cold_below=10):
        self.cut_value = cut_value
        self.half_ms = half_ms
        self.weight = weight
        self.dormant_below = dormant_below
        self.cold_below = cold_below

    def score(self, region, now):
        idle = ticks_diff(now, region.last_use)
        if idle < 0:
            idle = 0
        s = recency(idle, self.half_ms)
        try:
            cv = self.cut_value(region.owner)
        except Exception:  # the engine is optional (DC-1): fall back
            cv = None
        if cv:
            cv = 0 if cv < 0 else (100 if cv > 100 else int(cv))
            s += (cv * self.weight) // 100
        return s

    def decide(self, region, now):
        s = self.score(region, now)
        if s < self.cold_below:
            return COLD
        if s < self.dormant_below:
            return DORMANT
        return HOT
