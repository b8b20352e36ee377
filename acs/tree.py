"""What an RPC exchange tells us about a device's parameter tree, as one update value.

CWMP names objects with a trailing dot ("InternetGatewayDevice.LANDevice."); the tree
stores every node without it and records which nodes are objects. Functions here are
pure: the store turns a `TreeUpdate` into SQL, the session never touches storage.
"""

from __future__ import annotations

from dataclasses import dataclass

from acs import messages as m


def node_path(name: str) -> str:
    """A CWMP name as a stored path: objects lose their trailing dot."""
    return name[:-1] if name.endswith(".") else name


def object_name(path: str) -> str:
    """A stored object path as CWMP names it; the root stays ""."""
    return path + "." if path else ""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What GetParameterNames says of a node."""

    path: str
    object: bool
    writable: bool


@dataclass(frozen=True, slots=True)
class Prune:
    """After listing `root`, nodes under it that were not listed are gone.

    `next_level` listings cover only the root's children: a child not listed is removed
    with its subtree; a full listing covers every descendant.
    """

    root: str
    next_level: bool
    keep: frozenset[str]


@dataclass(frozen=True, slots=True)
class Enumerated:
    """An object whose children were listed; `deep`: its whole subtree was."""

    path: str
    deep: bool


@dataclass(frozen=True, slots=True)
class TreeUpdate:
    values: tuple[m.ParameterValue, ...] = ()
    nodes: tuple[NodeInfo, ...] = ()
    attributes: tuple[m.ParameterAttribute, ...] = ()
    prunes: tuple[Prune, ...] = ()
    deletes: tuple[str, ...] = ()  # subtrees (the node included) that no longer exist
    enumerated: tuple[Enumerated, ...] = ()

    def __bool__(self) -> bool:
        return bool(
            self.values
            or self.nodes
            or self.attributes
            or self.prunes
            or self.deletes
            or self.enumerated
        )

    def merge(self, other: TreeUpdate) -> TreeUpdate:
        return TreeUpdate(
            self.values + other.values,
            self.nodes + other.nodes,
            self.attributes + other.attributes,
            self.prunes + other.prunes,
            self.deletes + other.deletes,
            self.enumerated + other.enumerated,
        )


EMPTY = TreeUpdate()


def from_values(params: tuple[m.ParameterValue, ...]) -> TreeUpdate:
    """Values read (GetParameterValuesResponse, Inform) or written (SetParameterValues)."""
    return TreeUpdate(values=params)


def from_names(request: m.GetParameterNames, response: m.GetParameterNamesResponse) -> TreeUpdate:
    """Nodes listed by GetParameterNames, and what the listing shows to be gone."""
    nodes = tuple(
        NodeInfo(node_path(p.name), p.name.endswith("."), p.writable)
        for p in response.parameters
        if p.name
    )
    root = node_path(request.parameter_path)
    if request.parameter_path and not request.parameter_path.endswith("."):
        return TreeUpdate(nodes=nodes)  # a single parameter: nothing to prune
    keep = frozenset(n.path for n in nodes)
    if request.next_level:
        enumerated: tuple[Enumerated, ...] = (Enumerated(root, False),)
    else:
        objects = (n.path for n in nodes if n.object and n.path != root)
        enumerated = (Enumerated(root, True), *(Enumerated(p, True) for p in objects))
    return TreeUpdate(
        nodes=nodes, prunes=(Prune(root, request.next_level, keep),), enumerated=enumerated
    )


def from_attributes(params: tuple[m.ParameterAttribute, ...]) -> TreeUpdate:
    return TreeUpdate(attributes=params)


def from_set_attributes(request: m.SetParameterAttributes) -> TreeUpdate:
    """Attributes the CPE accepted; a change flag of false leaves that attribute alone.

    Stored attributes are whole rows, so only entries that set both halves are recorded;
    the rest are refreshed by the next GetParameterAttributes.
    """
    return TreeUpdate(
        attributes=tuple(
            m.ParameterAttribute(p.name, p.notification, p.access_list)
            for p in request.parameters
            if p.notification_change and p.access_list_change and not p.name.endswith(".")
        )
    )


def from_add_object(request: m.AddObject, response: m.AddObjectResponse) -> TreeUpdate:
    path = f"{node_path(request.object_name)}.{response.instance_number}"
    return TreeUpdate(nodes=(NodeInfo(path, True, True),))


def from_delete_object(request: m.DeleteObject) -> TreeUpdate:
    return TreeUpdate(deletes=(node_path(request.object_name),))
