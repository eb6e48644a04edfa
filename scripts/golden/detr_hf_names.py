#!/usr/bin/python3
"""Golden parameter/buffer names and shapes of HF transformers' DetrForObjectDetection for facebook/detr-resnet-50
(91 COCO labels + "no object"), for tests/unit/models/test_detr.cpp.

transformers and timm are not installed here, so the names are produced the way facebook/detr-resnet-50 itself was
made: the original DETR's state dict (facebookresearch/detr 29901c5: models/detr.py DETR, models/backbone.py
Backbone = torchvision resnet50 with FrozenBatchNorm2d behind IntermediateLayerGetter (conv1 .. layer4, no fc),
models/transformer.py with nn.MultiheadAttention) renamed by HF's
src/transformers/models/detr/convert_detr_original_pytorch_checkpoint_to_pytorch.py (commit 00e12e7): its
rename_keys list, rename_backbone_keys (backbone.0.body -> backbone.conv_encoder.model), read_in_q_k_v (in_proj split
into q, k, v in that order) and the "model." prefix for everything but the heads. The module structure below
transcribes the original's __init__ attribute names; the backbone is torchvision's own resnet50.
The shared fixtures README reports the same check made on HF itself: 530 tensors for detr-resnet-50.

Run: /usr/bin/python3 scripts/golden/detr_hf_names.py   (writes tests/golden/detr_resnet50_hf_names.txt)
Each line: NAME<TAB>comma-separated shape, sorted by name. FrozenBatchNorm2d has no num_batches_tracked.
"""
import copy
import os
from collections import OrderedDict

import torch
import torchvision
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter


class FrozenBatchNorm2d(nn.Module):  # models/backbone.py
    def __init__(self, n):
        super().__init__()
        self.register_buffer("weight", torch.ones(n))
        self.register_buffer("bias", torch.zeros(n))
        self.register_buffer("running_mean", torch.zeros(n))
        self.register_buffer("running_var", torch.ones(n))


class EncoderLayer(nn.Module):  # models/transformer.py TransformerEncoderLayer
    def __init__(self, d, heads, ffn):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads)
        self.linear1 = nn.Linear(d, ffn)
        self.linear2 = nn.Linear(ffn, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)


class DecoderLayer(nn.Module):  # models/transformer.py TransformerDecoderLayer
    def __init__(self, d, heads, ffn):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads)
        self.multihead_attn = nn.MultiheadAttention(d, heads)
        self.linear1 = nn.Linear(d, ffn)
        self.linear2 = nn.Linear(ffn, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.norm3 = nn.LayerNorm(d)


class Stack(nn.Module):
    def __init__(self, layer, n, norm=None):
        super().__init__()
        self.layers = nn.ModuleList([copy.deepcopy(layer) for _ in range(n)])
        if norm is not None:
            self.norm = norm


class Transformer(nn.Module):  # post-norm: no encoder norm, a decoder norm
    def __init__(self, d=256, heads=8, enc=6, dec=6, ffn=2048):
        super().__init__()
        self.encoder = Stack(EncoderLayer(d, heads, ffn), enc)
        self.decoder = Stack(DecoderLayer(d, heads, ffn), dec, nn.LayerNorm(d))


class MLP(nn.Module):  # models/detr.py
    def __init__(self, input_dim, hidden_dim, output_dim, num_layers):
        super().__init__()
        h = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip([input_dim] + h, h + [output_dim]))


class Body(nn.Module):  # models/backbone.py Backbone(BackboneBase) inside Joiner: backbone.0.body
    def __init__(self, name):
        super().__init__()
        resnet = getattr(torchvision.models, name)(weights=None, norm_layer=FrozenBatchNorm2d)
        self.body = IntermediateLayerGetter(resnet, return_layers={"layer4": "0"})


class DETR(nn.Module):  # models/detr.py
    def __init__(self, backbone_name="resnet50", num_classes=91, num_queries=100, d=256):
        super().__init__()
        self.transformer = Transformer(d)
        self.class_embed = nn.Linear(d, num_classes + 1)
        self.bbox_embed = MLP(d, d, 4, 3)
        self.query_embed = nn.Embedding(num_queries, d)
        channels = 512 if backbone_name in ("resnet18", "resnet34") else 2048
        self.input_proj = nn.Conv2d(channels, d, kernel_size=1)
        self.backbone = nn.Sequential(Body(backbone_name))  # Joiner(backbone, position_embedding): no parameters in [1]


def convert(state_dict, d=256, layers=6):
    """HF's convert_detr_original_pytorch_checkpoint_to_pytorch.py, non-panoptic branch."""
    rename_keys = []
    for i in range(layers):
        e, dd = f"transformer.encoder.layers.{i}", f"transformer.decoder.layers.{i}"
        for p in ("weight", "bias"):
            rename_keys += [
                (f"{e}.self_attn.out_proj.{p}", f"encoder.layers.{i}.self_attn.out_proj.{p}"),
                (f"{e}.linear1.{p}", f"encoder.layers.{i}.fc1.{p}"),
                (f"{e}.linear2.{p}", f"encoder.layers.{i}.fc2.{p}"),
                (f"{e}.norm1.{p}", f"encoder.layers.{i}.self_attn_layer_norm.{p}"),
                (f"{e}.norm2.{p}", f"encoder.layers.{i}.final_layer_norm.{p}"),
                (f"{dd}.self_attn.out_proj.{p}", f"decoder.layers.{i}.self_attn.out_proj.{p}"),
                (f"{dd}.multihead_attn.out_proj.{p}", f"decoder.layers.{i}.encoder_attn.out_proj.{p}"),
                (f"{dd}.linear1.{p}", f"decoder.layers.{i}.fc1.{p}"),
                (f"{dd}.linear2.{p}", f"decoder.layers.{i}.fc2.{p}"),
                (f"{dd}.norm1.{p}", f"decoder.layers.{i}.self_attn_layer_norm.{p}"),
                (f"{dd}.norm2.{p}", f"decoder.layers.{i}.encoder_attn_layer_norm.{p}"),
                (f"{dd}.norm3.{p}", f"decoder.layers.{i}.final_layer_norm.{p}"),
            ]
    rename_keys += [
        ("input_proj.weight", "input_projection.weight"),
        ("input_proj.bias", "input_projection.bias"),
        ("query_embed.weight", "query_position_embeddings.weight"),
        ("transformer.decoder.norm.weight", "decoder.layernorm.weight"),
        ("transformer.decoder.norm.bias", "decoder.layernorm.bias"),
        ("class_embed.weight", "class_labels_classifier.weight"),
        ("class_embed.bias", "class_labels_classifier.bias"),
    ] + [(f"bbox_embed.layers.{k}.{p}", f"bbox_predictor.layers.{k}.{p}") for k in range(3) for p in ("weight", "bias")]
    for src, dest in rename_keys:
        state_dict[dest] = state_dict.pop(src)
    state_dict = OrderedDict(
        (k.replace("backbone.0.body", "backbone.conv_encoder.model") if "backbone.0.body" in k else k, v)
        for k, v in state_dict.items())
    for i in range(layers):
        for src, dest in ((f"transformer.encoder.layers.{i}.self_attn", f"encoder.layers.{i}.self_attn"),
                          (f"transformer.decoder.layers.{i}.self_attn", f"decoder.layers.{i}.self_attn"),
                          (f"transformer.decoder.layers.{i}.multihead_attn", f"decoder.layers.{i}.encoder_attn")):
            w = state_dict.pop(f"{src}.in_proj_weight")
            b = state_dict.pop(f"{src}.in_proj_bias")
            state_dict[f"{dest}.q_proj.weight"], state_dict[f"{dest}.q_proj.bias"] = w[:d, :], b[:d]
            state_dict[f"{dest}.k_proj.weight"], state_dict[f"{dest}.k_proj.bias"] = w[d:2 * d, :], b[d:2 * d]
            state_dict[f"{dest}.v_proj.weight"], state_dict[f"{dest}.v_proj.bias"] = w[-d:, :], b[-d:]
    out = OrderedDict()
    for k, v in state_dict.items():
        out[k if k.startswith(("class_labels_classifier", "bbox_predictor")) else "model." + k] = v
    return out


def main():
    state = convert(DETR().state_dict())
    rows = sorted((k, ",".join(str(s) for s in v.shape)) for k, v in state.items())
    path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "detr_resnet50_hf_names.txt")
    with open(path, "w") as f:
        for name, shape in rows:
            f.write(f"{name}\t{shape}\n")
    print(f"{path}: {len(rows)} tensors")


if __name__ == "__main__":
    main()
