# Viper inner loop of the Stoer-Wagner maximum-adjacency step. Same contract
# as mincut.ma_step_py (tested on the same vectors); imported inside
# try/except (ImportError, SyntaxError) for ports without the native emitter.
import micropython


@micropython.viper
def ma_step(w: ptr32, n: int, act: ptr16, m: int, added: ptr8, key: ptr32) -> int:
    best = -1
    bk = -1
    i = 0
    while i < m:
        v = int(act[i])
        if added[v] == 0:
            k = int(key[v])
            if k > bk:
                bk = k
                best = v
        i += 1
    if best < 0:
        return -1
    added[best] = 1
    row = best * n
    i = 0
    while i < m:
        v = int(act[i])
        if added[v] == 0:
            key[v] = int(key[v]) + int(w[row + v])
        i += 1
    return best
