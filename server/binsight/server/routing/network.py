"""The node layout both engines solve on, with disposal trips folded into the matrices.

Nodes: ``[home depots | route ends | disposal sites | clients]``. Without disposal sites the route
ends are the home depots themselves. With them, each home depot gets a *route end* node whose
incoming arc from node ``i`` costs ``min_s d(i, s) + d(s, home)``: "unload at the best disposal
site, then drive home". That choice depends only on the last stop, so folding it into the arc is
exact, and it makes "the last stop before the depot is a disposal site" hold by construction.
Mid-route unloading is a visit to a disposal-site node, which empties the truck.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from binsight.server.routing.instance import Instance, IntMatrix

__all__ = ["Network"]


@dataclass
class Network:
    """Engine view of an :class:`Instance`; see the module docstring for the node layout."""

    inst: Instance
    dist: IntMatrix
    dur: IntMatrix
    loc: list[int]  # node -> instance location
    n_depots: int
    end_node: list[int]  # home depot index -> its route-end node
    disposal_nodes: list[int]
    client_offset: int
    final_site: np.ndarray  # [node, depot] -> disposal site index used by the route end (or -1)

    @classmethod
    def build(cls, inst: Instance) -> Network:
        nd, ns = len(inst.depots), len(inst.disposal)
        has_disposal = ns > 0
        n_ends = nd if has_disposal else 0
        loc = [d.loc for d in inst.depots]
        loc += [d.loc for d in inst.depots] if has_disposal else []
        loc += [s.loc for s in inst.disposal]
        client_offset = len(loc)
        loc += [c.loc for c in inst.clients]
        idx = np.asarray(loc, dtype=np.int64)
        dist = inst.dist[np.ix_(idx, idx)].copy()
        dur = inst.dur[np.ix_(idx, idx)].copy()
        final_site = np.full((len(loc), nd), -1, dtype=np.int64)
        if has_disposal:
            site_locs = np.asarray([s.loc for s in inst.disposal], dtype=np.int64)
            site_svc = np.asarray([s.service for s in inst.disposal], dtype=np.int64)
            for h, depot in enumerate(inst.depots):
                via = inst.dist[np.ix_(idx, site_locs)] + inst.dist[site_locs, depot.loc][None, :]
                best = via.argmin(axis=1)
                rows = np.arange(len(loc))
                end = nd + h
                dist[:, end] = via[rows, best]
                dur[:, end] = (
                    inst.dur[idx, site_locs[best]] + site_svc[best] + inst.dur[site_locs[best], depot.loc]
                )
                final_site[:, h] = best
                # Nobody leaves a route end; give it the home depot's row so the matrix stays sane.
                dist[end, :] = dist[h, :]
                dur[end, :] = dur[h, :]
                dist[end, end] = dur[end, end] = 0
        end_node = [nd + h if has_disposal else h for h in range(nd)]
        disposal_nodes = list(range(nd + n_ends, nd + n_ends + ns))
        return cls(
            inst=inst,
            dist=dist,
            dur=dur,
            loc=loc,
            n_depots=nd,
            end_node=end_node,
            disposal_nodes=disposal_nodes,
            client_offset=client_offset,
            final_site=final_site,
        )
