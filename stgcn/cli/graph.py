"""``stgcn graph``: print a layout's graph and its partitions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stgcn.utils.safe_text import terminal_safe as safe


def add_graph_parser(sub: argparse._SubParsersAction) -> None:
    from stgcn.graph.partitions import NORMALIZATIONS, STRATEGIES

    p = sub.add_parser("graph", help="show a skeleton graph and its partitions",
                       description="Print V, K, the edges and each partition's nonzero count of a layout.")
    p.add_argument("layout", help="built-in layout name or a .json/.yaml layout file")
    p.add_argument("--strategy", default="spatial", choices=STRATEGIES)
    p.add_argument("--max-hop", type=int, default=1)
    p.add_argument("--dilation", type=int, default=1)
    p.add_argument("--normalization", default="notes", choices=NORMALIZATIONS)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--plot", type=Path, default=None,
                   help="also draw the layout and its partitions to this picture (needs the 'plot' extra)")
    p.set_defaults(func=cmd_graph)


def cmd_graph(args: argparse.Namespace) -> int:
    from stgcn.graph.partitions import Graph
    from stgcn.graph.roles import ROLES, resolve_role

    g = Graph(args.layout, args.strategy, args.max_hop, args.dilation, args.normalization)
    lay = g.layout
    if args.plot is not None:
        from stgcn.inference.render import plot_layout

        plot_layout(lay, args.plot, strategy=args.strategy, max_hop=args.max_hop, dilation=args.dilation,
                    normalization=args.normalization)
        if not args.json:
            print(f"wrote {args.plot}")
    partitions = [{"name": name, "nonzero": int((g.A[k] != 0).sum())} for k, name in enumerate(g.partition_names)]
    roles = {role: lay.joints[j] for role in ROLES if (j := resolve_role(lay, role)) is not None}
    if args.json:
        print(json.dumps({"layout": lay.name, "fingerprint": lay.fingerprint, "V": g.V, "K": g.K,
                          "center": lay.center, "edges": [list(e) for e in lay.edges], "partitions": partitions,
                          "roles": roles}))
        return 0
    source = f"  ({safe(lay.source)})" if lay.source else ""
    print(f"layout         {safe(lay.name)}{source}")
    print(f"fingerprint    {lay.fingerprint}")
    print(f"V (joints)     {g.V}")
    print(f"K (partitions) {g.K}   strategy={g.strategy} max_hop={g.max_hop} dilation={g.dilation} "
          f"normalization={g.normalization}")
    print(f"center         {lay.center} ({safe(lay.joints[lay.center])})")
    print("roles          " + (", ".join(f"{r}={safe(j)}" for r, j in roles.items()) or "(none)"))
    print(f"edges ({len(lay.edges)}):")
    for a, b in lay.edges:
        print(f"  {a:>3} {safe(lay.joints[a]):<18} -- {b:>3} {safe(lay.joints[b])}")
    print("partitions:")
    for k, part in enumerate(partitions):
        print(f"  {k}: {part['name']:<20} nonzero={part['nonzero']}")
    return 0
