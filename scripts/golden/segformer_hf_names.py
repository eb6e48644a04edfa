#!/usr/bin/python3
"""Golden parameter/buffer names and shapes of HF transformers' SegformerForSemanticSegmentation for nvidia/mit-b0
and nvidia/mit-b3 with 150 labels (the ADE20k heads of nvidia/segformer-b{0,3}-finetuned-ade-512-512), for
tests/unit/models/test_segformer.cpp.

transformers is not installed here, so the module tree below is a transcription of the constructors (__init__ only:
names and shapes depend on nothing else) of src/transformers/models/segformer/modeling_segformer.py at
huggingface/transformers commit 01ae98ae2414210efd0d9ac1ffe78ff21588f1f7 (the file the shared parity fixture was
made with), built with real torch.nn modules so that torch itself decides the parameter/buffer names and shapes
(LayerNorm weight/bias, BatchNorm running stats and num_batches_tracked, conv bias or not). Class and attribute names
are HF's. The sizes of b0/b3 are those of HF's convert_segformer_original_to_pytorch.py.

Independent check of the transcription: when ../shared/fixtures/segformer-tiny is present, the same code is built
for that fixture's config.json and must give exactly the tensor names and shapes of its model.safetensors, which HF's
own modeling_segformer.py produced (num_batches_tracked aside, which safetensors checkpoints do not store). The
script stops with an error otherwise.

Run: /usr/bin/python3 scripts/golden/segformer_hf_names.py   (writes tests/golden/segformer_b{0,3}_hf_names.txt)
Each line: NAME<TAB>comma-separated shape (empty for a scalar), sorted by name; num_batches_tracked included.
"""
import json
import os
import struct
import types

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")


# ---- transcription of modeling_segformer.py's constructors (forward passes omitted) ----

class SegformerOverlapPatchEmbeddings(nn.Module):
    def __init__(self, patch_size, stride, num_channels, hidden_size):
        super().__init__()
        self.proj = nn.Conv2d(num_channels, hidden_size, kernel_size=patch_size, stride=stride,
                              padding=patch_size // 2)
        self.layer_norm = nn.LayerNorm(hidden_size)


class SegformerEfficientSelfAttention(nn.Module):
    def __init__(self, config, hidden_size, num_attention_heads, sequence_reduction_ratio):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError("hidden size not a multiple of the number of heads")
        self.attention_head_size = int(self.hidden_size / self.num_attention_heads)
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.query = nn.Linear(self.hidden_size, self.all_head_size)
        self.key = nn.Linear(self.hidden_size, self.all_head_size)
        self.value = nn.Linear(self.hidden_size, self.all_head_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)
        self.sr_ratio = sequence_reduction_ratio
        if sequence_reduction_ratio > 1:
            self.sr = nn.Conv2d(hidden_size, hidden_size, kernel_size=sequence_reduction_ratio,
                                stride=sequence_reduction_ratio)
            self.layer_norm = nn.LayerNorm(hidden_size)


class SegformerSelfOutput(nn.Module):
    def __init__(self, config, hidden_size):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)


class SegformerAttention(nn.Module):
    def __init__(self, config, hidden_size, num_attention_heads, sequence_reduction_ratio):
        super().__init__()
        self.self = SegformerEfficientSelfAttention(config=config, hidden_size=hidden_size,
                                                    num_attention_heads=num_attention_heads,
                                                    sequence_reduction_ratio=sequence_reduction_ratio)
        self.output = SegformerSelfOutput(config, hidden_size=hidden_size)
        self.pruned_heads = set()


class SegformerDWConv(nn.Module):
    def __init__(self, dim=768):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, bias=True, groups=dim)


class SegformerMixFFN(nn.Module):
    def __init__(self, config, in_features, hidden_features=None, out_features=None):
        super().__init__()
        out_features = out_features or in_features
        self.dense1 = nn.Linear(in_features, hidden_features)
        self.dwconv = SegformerDWConv(hidden_features)
        self.dense2 = nn.Linear(hidden_features, out_features)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)


class SegformerLayer(nn.Module):
    def __init__(self, config, hidden_size, num_attention_heads, drop_path, sequence_reduction_ratio, mlp_ratio):
        super().__init__()
        self.layer_norm_1 = nn.LayerNorm(hidden_size)
        self.attention = SegformerAttention(config, hidden_size=hidden_size, num_attention_heads=num_attention_heads,
                                            sequence_reduction_ratio=sequence_reduction_ratio)
        self.drop_path = nn.Identity()  # SegformerDropPath has no parameters
        self.layer_norm_2 = nn.LayerNorm(hidden_size)
        mlp_hidden_size = int(hidden_size * mlp_ratio)
        self.mlp = SegformerMixFFN(config, in_features=hidden_size, hidden_features=mlp_hidden_size)


class SegformerEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        drop_path_decays = [x.item() for x in torch.linspace(0, config.drop_path_rate, sum(config.depths))]
        embeddings = []
        for i in range(config.num_encoder_blocks):
            embeddings.append(SegformerOverlapPatchEmbeddings(
                patch_size=config.patch_sizes[i], stride=config.strides[i],
                num_channels=config.num_channels if i == 0 else config.hidden_sizes[i - 1],
                hidden_size=config.hidden_sizes[i]))
        self.patch_embeddings = nn.ModuleList(embeddings)
        blocks = []
        cur = 0
        for i in range(config.num_encoder_blocks):
            layers = []
            if i != 0:
                cur += config.depths[i - 1]
            for j in range(config.depths[i]):
                layers.append(SegformerLayer(config, hidden_size=config.hidden_sizes[i],
                                             num_attention_heads=config.num_attention_heads[i],
                                             drop_path=drop_path_decays[cur + j],
                                             sequence_reduction_ratio=config.sr_ratios[i],
                                             mlp_ratio=config.mlp_ratios[i]))
            blocks.append(nn.ModuleList(layers))
        self.block = nn.ModuleList(blocks)
        self.layer_norm = nn.ModuleList([nn.LayerNorm(config.hidden_sizes[i])
                                         for i in range(config.num_encoder_blocks)])


class SegformerModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.encoder = SegformerEncoder(config)


class SegformerMLP(nn.Module):
    def __init__(self, config, input_dim):
        super().__init__()
        self.proj = nn.Linear(input_dim, config.decoder_hidden_size)


class SegformerDecodeHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        mlps = []
        for i in range(config.num_encoder_blocks):
            mlps.append(SegformerMLP(config, input_dim=config.hidden_sizes[i]))
        self.linear_c = nn.ModuleList(mlps)
        self.linear_fuse = nn.Conv2d(in_channels=config.decoder_hidden_size * config.num_encoder_blocks,
                                     out_channels=config.decoder_hidden_size, kernel_size=1, bias=False)
        self.batch_norm = nn.BatchNorm2d(config.decoder_hidden_size)
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.classifier = nn.Conv2d(config.decoder_hidden_size, config.num_labels, kernel_size=1)
        self.config = config


class SegformerForSemanticSegmentation(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.segformer = SegformerModel(config)
        self.decode_head = SegformerDecodeHead(config)


# ---- configs ----

def segformer_config(**overrides):
    """SegformerConfig's defaults (configuration_segformer.py), num_labels as PretrainedConfig resolves it."""
    c = dict(num_channels=3, num_encoder_blocks=4, depths=[2, 2, 2, 2], sr_ratios=[8, 4, 2, 1],
             hidden_sizes=[32, 64, 160, 256], patch_sizes=[7, 3, 3, 3], strides=[4, 2, 2, 2],
             num_attention_heads=[1, 2, 5, 8], mlp_ratios=[4, 4, 4, 4], hidden_dropout_prob=0.0,
             attention_probs_dropout_prob=0.0, classifier_dropout_prob=0.1, drop_path_rate=0.1,
             decoder_hidden_size=256, num_labels=2)
    c.update(overrides)
    return types.SimpleNamespace(**c)


# convert_segformer_original_to_pytorch.py: b0 = the defaults; b3 = [64, 128, 320, 512], decoder 768, [3, 4, 18, 3].
SIZES = {
    "b0": dict(),
    "b3": dict(hidden_sizes=[64, 128, 320, 512], decoder_hidden_size=768, depths=[3, 4, 18, 3]),
}


def rows_of(model):
    return sorted((k, ",".join(str(d) for d in v.shape)) for k, v in model.state_dict().items())


def safetensors_shapes(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return {k: ",".join(str(d) for d in v["shape"]) for k, v in header.items()}


def check_against_fixture():
    fixture = os.path.join(ROOT, "..", "shared", "fixtures", "segformer-tiny")
    if not os.path.isdir(fixture):
        print(f"{fixture}: absent, transcription not cross-checked")
        return
    with open(os.path.join(fixture, "config.json")) as f:
        cfg = json.load(f)
    keys = ("num_channels", "num_encoder_blocks", "depths", "sr_ratios", "hidden_sizes", "patch_sizes", "strides",
            "num_attention_heads", "mlp_ratios", "hidden_dropout_prob", "attention_probs_dropout_prob",
            "classifier_dropout_prob", "drop_path_rate", "decoder_hidden_size")
    config = segformer_config(**{k: cfg[k] for k in keys}, num_labels=len(cfg["id2label"]))
    ours = {k: v for k, v in rows_of(SegformerForSemanticSegmentation(config)) if not k.endswith("num_batches_tracked")}
    theirs = safetensors_shapes(os.path.join(fixture, "model.safetensors"))
    if ours != theirs:
        raise SystemExit(f"transcription disagrees with the fixture: only ours {sorted(set(ours) - set(theirs))}, "
                         f"only HF's {sorted(set(theirs) - set(ours))}, shapes "
                         f"{[k for k in ours if k in theirs and ours[k] != theirs[k]]}")
    print(f"{fixture}: transcription gives the fixture's {len(theirs)} HF names and shapes")


def main() -> None:
    check_against_fixture()
    out_dir = os.path.join(ROOT, "tests", "golden")
    for size, overrides in SIZES.items():
        model = SegformerForSemanticSegmentation(segformer_config(**overrides, num_labels=150))
        rows = rows_of(model)
        path = os.path.join(out_dir, f"segformer_{size}_hf_names.txt")
        with open(path, "w") as f:
            for name, shape in rows:
                f.write(f"{name}\t{shape}\n")
        print(f"{path}: {len(rows)} tensors")


if __name__ == "__main__":
    main()
