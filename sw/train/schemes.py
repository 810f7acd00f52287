"""The schemes lowbit trains, by name (standard library only, so that the command line and the Python
API can list them without importing PyTorch)."""

__all__ = ["SCHEMES", "ALL_SCHEMES", "VARIANTS", "TABLE_SCHEMES", "TRAINABLE", "INTEGER_SCHEMES", "ARCHS"]

#: The network architectures ``lowbit train --arch`` builds (their layers: :data:`lowbit.sw.train.qat.ARCHITECTURES`).
ARCHS = ("mlp", "cnn")

#: The five papers' schemes and fp32; :data:`ALL_SCHEMES` adds the uniform 8-bit baseline and FGQ with N = 64.
SCHEMES = ("fp32", "binary", "twn", "fgq", "fatnn", "nhot1", "nhot2", "nhot3")
ALL_SCHEMES = ("fp32", "binary", "twn", "fgq", "fgq64", "fatnn", "uniform8", "nhot1", "nhot2", "nhot3")
#: label: (scheme, settings changes). Option settings of a scheme that the accuracy table reports too.
VARIANTS = {"fgq-exact": ("fgq", {"fgq_method": "exact"}), "fgq64-ft": ("fgq64", {"finetune_epochs": 10})}
TABLE_SCHEMES = ALL_SCHEMES[:5] + tuple(VARIANTS) + ALL_SCHEMES[5:]
#: The schemes whose models are integer networks, which a tile runs: every scheme but the float reference.
INTEGER_SCHEMES = tuple(s for s in ALL_SCHEMES if s != "fp32")
#: Every name ``lowbit train --scheme`` takes: the schemes and the variants.
TRAINABLE = ALL_SCHEMES + tuple(VARIANTS)
