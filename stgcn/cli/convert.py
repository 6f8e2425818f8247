"""``stgcn convert``: import checkpoints of other implementations."""

from __future__ import annotations

import argparse
from pathlib import Path

from stgcn.errors import StgcnError


def add_convert_parser(sub: argparse._SubParsersAction) -> None:
    from stgcn.graph.partitions import STRATEGIES

    p = sub.add_parser("convert", help="import checkpoints of other implementations")
    fmt = p.add_subparsers(dest="source_format", required=True, metavar="FORMAT")
    o = fmt.add_parser("original", help="yysijie/st-gcn (and mmskeleton st_gcn) checkpoints",
                       description="Map an original ST-GCN state_dict into an stgcn checkpoint, strictly.")
    o.add_argument("src", type=Path, help="original .pt file")
    o.add_argument("--layout", default="openpose-18", help="layout it was trained on (default openpose-18)")
    o.add_argument("--strategy", default="spatial", choices=STRATEGIES)
    o.add_argument("--max-hop", type=int, default=1)
    o.add_argument("--dilation", type=int, default=1)
    o.add_argument("--num-classes", type=int, default=None, help="expected number of classes (checked)")
    o.add_argument("--class-names", type=Path, default=None, help="text file, one class name per line")
    o.add_argument("--out", type=Path, required=True, help="output stgcn checkpoint")
    o.set_defaults(func=cmd_convert_original)
    for framework, example in (("mmaction2", "stgcn_8xb16-joint-u100-80e_ntu60-xsub-keypoint-2d"),
                               ("pyskl", "stgcn_pyskl_ntu60_xsub_3dkp/j")):
        m = fmt.add_parser(framework, help=f"{'MMAction2 1.x' if framework == 'mmaction2' else 'PYSKL'} ST-GCN "
                                           "checkpoints (with their test pipeline)",
                           description=f"Map a published {framework} ST-GCN checkpoint into an stgcn checkpoint, "
                                       "strictly, storing the upstream test pipeline as its preprocessing. SRC is "
                                       "a .pth file, an http(s)/file URL (downloaded once into the cache, checked "
                                       "against the sha256 prefix in its name) or, without --config, a catalogue "
                                       f"name (`stgcn models`), e.g. {example}, downloaded and converted.")
        m.add_argument("src", help=".pth file, URL, or catalogue config name")
        m.add_argument("--config", default=None,
                       help="upstream config: a catalogue name or a path to the upstream .py config (default: SRC "
                            "when it is a catalogue name, or the catalogue entry whose URL has SRC's file name)")
        m.add_argument("--out", type=Path, required=True, help="output stgcn checkpoint")
        m.set_defaults(func=cmd_convert_mm, framework=framework)


def _resolve_source(src: str, config: str | None, framework: str) -> tuple[str, str]:
    """``(weights, config)``: a catalogue name alone gives its URL; a file or URL alone the entry of its file
    name."""
    from stgcn.convert.catalogue import get_model_entry, list_models

    if config is not None:
        return src, config
    entries = list_models(framework)
    if any(e["name"] == src for e in entries):
        return get_model_entry(src, framework)["url"], src
    base = src.rstrip("/").rsplit("/", 1)[-1]
    for e in entries:
        if e["url"].rsplit("/", 1)[-1] == base and not base.endswith(("j.pth", "b.pth", "jm.pth", "bm.pth")):
            return src, e["name"]
    if "://" not in src and not Path(src).exists():
        get_model_entry(src, framework)  # an unknown name: the error lists the valid ones
    raise StgcnError(f"{src}: cannot tell its upstream config; give --config NAME_OR_FILE (`stgcn models` lists "
                     "the names)")


def cmd_convert_mm(args: argparse.Namespace) -> int:
    from stgcn.convert.mmaction2 import convert_mm
    from stgcn.engine.checkpoint import save_checkpoint

    src, config = _resolve_source(args.src, args.config, args.framework)
    conv = convert_mm(src, config=config, framework=args.framework)
    info = {k: v for k, v in conv.info.items() if isinstance(v, str | int | float | bool | list) or v is None}
    save_checkpoint(args.out, conv.model, class_names=conv.class_names, preprocess=conv.preprocessing,
                    metadata={"converted_from": src, "source_format": args.framework, "config": config, **info})
    cfg, pre = conv.model.config, conv.preprocessing
    print(f"wrote {args.out}: {cfg.num_classes} classes, layout {cfg.graph.layout}, in_channels={cfg.in_channels}, "
          f"test pipeline {pre.framework} feats={'+'.join(pre.feats)} clip_len={pre.clip_len} "
          f"num_clips={pre.num_clips}")
    return 0


def _read_class_names(path: Path) -> list[str]:
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as e:
        raise StgcnError(f"{path}: cannot read class names ({e.strerror or e})") from None
    return names


def cmd_convert_original(args: argparse.Namespace) -> int:
    from stgcn.convert.original import convert_original
    from stgcn.engine.checkpoint import save_checkpoint

    model = convert_original(args.src, layout=args.layout, strategy=args.strategy, num_classes=args.num_classes,
                             max_hop=args.max_hop, dilation=args.dilation)
    names = None
    if args.class_names is not None:
        names = _read_class_names(args.class_names)
        if len(names) != model.config.num_classes:
            raise StgcnError(f"{args.class_names}: {len(names)} class names, but the model has "
                             f"{model.config.num_classes} classes")
    save_checkpoint(args.out, model, class_names=names,
                    metadata={"converted_from": str(args.src), "source_format": "original"})
    cfg = model.config
    print(f"wrote {args.out}: {cfg.num_classes} classes, in_channels={cfg.in_channels}, layout "
          f"{args.layout}, strategy {cfg.graph.strategy}, K={model.A.shape[0]}, normalization original")
    return 0
