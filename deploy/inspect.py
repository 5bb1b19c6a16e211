"""Human-readable rendering of a bundle manifest (for `flywheel bundle inspect`)."""

from __future__ import annotations


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _tensor(spec: dict) -> str:
    dims = "×".join(str(d) for d in spec["shape"])
    return f"{spec['name']} {spec['dtype']} [{dims}]"


def format_manifest(manifest: dict) -> str:
    """Multi-line summary: identity, lineage, model spec, configs, metrics, files."""
    model = manifest["model"]
    quant = model["quantization"]
    lines = [
        f"bundle      {manifest['name']} {manifest['version']}",
        f"release     counter {manifest['release_counter']}",
        f"profile     {manifest['profile']}",
        f"format      {manifest['format_version']}",
        f"created by  {manifest['created_by']}",
        f"git         {manifest['git_revision']}",
        f"params      {manifest['params_hash']}",
        "data:",
        *(f"  {name:<28} {value}" for name, value in sorted(manifest["data_hashes"].items())),
        f"model       {model['file']}  int8 scale {quant['scale']:g} zero point {quant['zero_point']}",
        *(f"  input     {_tensor(t)}" for t in model["inputs"]),
        *(f"  output    {_tensor(t)}" for t in model["outputs"]),
        "configs:",
        *(
            f"  {name:<12} {entry['file']:<24} runtime {entry['runtime_version']}"
            for name, entry in sorted(manifest["configs"].items())
        ),
        "metrics:",
        *(f"  {name:<28} {value:g}" for name, value in sorted(manifest["metrics"].items())),
    ]
    if "self_test" in manifest:
        lines.append(f"self-test   {manifest['self_test']}")
    if "release" in manifest:
        rel = manifest["release"]
        lines.append(f"release     model {rel['model']} (candidate {rel['candidate']}): {rel['reason']}")
    total = sum(entry["size"] for entry in manifest["files"].values())
    lines.append(f"files ({len(manifest['files'])}, {_size(total)}):")
    for name, entry in sorted(manifest["files"].items()):
        lines.append(f"  {entry['sha256'][:16]}  {_size(entry['size']):>10}  {name}")
    return "\n".join(lines) + "\n"
