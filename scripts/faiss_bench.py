#!/usr/bin/env python3
"""FAISS side of `zgq bench`.

A child process of the Node harness: it reads the same fvecs files every other library indexes,
builds FAISS indexes and runs timed search passes when asked, so FAISS passes can be interleaved
with the other libraries' passes.

Protocol: one JSON object per line on stdin. For each request the child writes zero or more
{"type": "progress", ...} lines and then exactly one {"type": "result", ...} or
{"type": "error", "message": ...} line on stdout (stdout carries protocol lines only). At start it
writes one {"type": "hello", "ok": bool, ...} line: ok is false, with the reason, when numpy or
faiss cannot be imported.

Run it single-threaded (OMP_NUM_THREADS=1, as the harness does); batch requests set the thread
count they ask for and restore it.
"""
import json
import sys
import time


def send(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


try:
    import numpy as np
    import faiss
except Exception as exc:  # the harness reports FAISS as missing with this reason
    send({"type": "hello", "ok": False, "error": f"{type(exc).__name__}: {exc}", "executable": sys.executable})
    sys.exit(0)


def read_fvecs(path):
    raw = np.fromfile(path, dtype="<i4")
    if raw.size == 0:
        raise ValueError(f"{path}: empty fvecs file")
    d = int(raw[0])
    if d <= 0 or raw.size % (d + 1) != 0:
        raise ValueError(f"{path}: size {raw.size * 4} bytes is not a whole number of records of dimension {d}")
    rows = raw.reshape(-1, d + 1)
    if not (rows[:, 0] == d).all():
        raise ValueError(f"{path}: records disagree on the dimension")
    return np.ascontiguousarray(rows[:, 1:]).view("<f4").astype(np.float32, copy=False)


class State:
    def __init__(self):
        self.xb = None
        self.xq = None
        self.k = 10
        self.indexes = {}  # name -> (kind, searchable index, parts kept alive)
        self.rows = None   # per-query views, made once so timed loops allocate nothing of their own


S = State()


def progress(phase, fraction):
    send({"type": "progress", "phase": phase, "fraction": fraction})


def add_chunked(index, xb, phase="add"):
    n = xb.shape[0]
    step = max(1000, n // 50)
    for start in range(0, n, step):
        index.add(xb[start:start + step])
        progress(phase, min(1.0, (start + step) / n))


def op_hello(_req):
    return {
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "compile": faiss.get_compile_options(),
        "threads": faiss.omp_get_max_threads(),
    }


def op_load(req):
    S.indexes.clear()
    S.xb = read_fvecs(req["base"])
    S.xq = read_fvecs(req["queries"])
    S.k = int(req["k"])
    if S.xb.shape[1] != S.xq.shape[1]:
        raise ValueError(f"base dim {S.xb.shape[1]} differs from query dim {S.xq.shape[1]}")
    nq = S.xq.shape[0]
    D = np.empty((nq, S.k), dtype=np.float32)
    I = np.empty((nq, S.k), dtype=np.int64)
    S.rows = ([S.xq[i:i + 1] for i in range(nq)], [D[i:i + 1] for i in range(nq)], [I[i:i + 1] for i in range(nq)], D, I)
    return {"n": int(S.xb.shape[0]), "nq": nq, "dim": int(S.xb.shape[1])}


def op_build(req):
    name, kind = req["name"], req["kind"]
    d = S.xb.shape[1]
    t0 = time.perf_counter()
    parts = []
    if kind == "flat":
        index = faiss.IndexFlatL2(d)
        add_chunked(index, S.xb)
    elif kind == "ivf":
        quantizer = faiss.IndexFlatL2(d)
        index = faiss.IndexIVFFlat(quantizer, d, int(req["nlist"]))
        progress("train", 0.0)
        index.train(S.xb)
        add_chunked(index, S.xb)
        parts.append(quantizer)
    elif kind == "ivfpq":
        quantizer = faiss.IndexFlatL2(d)
        ivfpq = faiss.IndexIVFPQ(quantizer, d, int(req["nlist"]), int(req["m"]), 8)
        progress("train", 0.0)
        ivfpq.train(S.xb)
        index = faiss.IndexRefineFlat(ivfpq)
        index.k_factor = float(req["kFactor"])
        add_chunked(index, S.xb)  # adds to the PQ index and to the exact re-rank storage
        parts += [quantizer, ivfpq]
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, int(req["M"]))
        index.hnsw.efConstruction = int(req["efConstruction"])
        add_chunked(index, S.xb)
    else:
        raise ValueError(f"unknown index kind {kind!r}")
    seconds = time.perf_counter() - t0
    nbytes = int(faiss.serialize_index(index).nbytes)
    S.indexes[name] = (kind, index, parts)
    return {"seconds": seconds, "bytes": nbytes, "threads": faiss.omp_get_max_threads()}


def set_params(name, params):
    kind, index, parts = S.indexes[name]
    if kind == "ivf":
        index.nprobe = int(params["nprobe"])
    elif kind == "ivfpq":
        parts[1].nprobe = int(params["nprobe"])
    elif kind == "hnsw":
        index.hnsw.efSearch = int(params["efSearch"])
    return index


def ids_of(I, nq):
    return I[:nq].ravel().tolist()


def op_run(req):
    index = set_params(req["name"], req.get("params", {}))
    nq, repeat, k = int(req["nq"]), int(req["repeat"]), S.k
    qrows, drows, irows, _D, I = S.rows
    search = index.search
    clock = time.perf_counter_ns
    lat = [0] * (nq * repeat)
    j = 0
    start = clock()
    for _ in range(repeat):
        for i in range(nq):
            t = clock()
            search(qrows[i], k, D=drows[i], I=irows[i])
            lat[j] = clock() - t
            j += 1
    seconds = (clock() - start) / 1e9
    return {"seconds": seconds, "latUs": [x / 1000.0 for x in lat], "ids": ids_of(I, nq)}


def op_batch(req):
    index = set_params(req["name"], req.get("params", {}))
    threads = int(req["threads"])
    _q, _d, _i, D, I = S.rows
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        t = time.perf_counter()
        index.search(S.xq, S.k, D=D, I=I)
        seconds = time.perf_counter() - t
    finally:
        faiss.omp_set_num_threads(before)
    return {"seconds": seconds, "ids": ids_of(I, S.xq.shape[0])}


def op_free(req):
    S.indexes.pop(req["name"], None)
    return {}


OPS = {"hello": op_hello, "load": op_load, "build": op_build, "run": op_run, "batch": op_batch, "free": op_free}


def main():
    hello = op_hello({})
    hello.update({"type": "hello", "ok": True})
    send(hello)
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            if req.get("op") == "quit":
                return
            out = OPS[req["op"]](req)
            out["type"] = "result"
            send(out)
        except Exception as exc:
            send({"type": "error", "message": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    main()
