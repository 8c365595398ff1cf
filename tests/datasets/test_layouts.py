import pytest

from zsar.datasets.layouts import COCO_17, KINECT_V1_20, LAYOUTS, NTU_25, layout_for
from zsar.errors import ZsarError


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_bone_tree_is_a_tree_reaching_every_joint(layout):
    assert layout.parents.count(-1) == 1
    assert len(layout.bones) == layout.num_joints - 1
    assert sorted(layout.descendants(layout.parents.index(-1))) == list(range(layout.num_joints))
    assert len(layout.bone_pairs) == layout.num_joints
    assert sorted(j for j, _ in layout.bone_pairs) == list(range(layout.num_joints))


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_mmaction_graph_builds_with_every_joint_connected(layout):
    pytest.importorskip("mmaction")
    from zsar.extract.mmaction_compat import import_mmaction

    import_mmaction()
    from mmaction.models.utils.graph import Graph

    graph = Graph(layout=layout.mmaction_graph(), mode="stgcn_spatial")
    assert graph.num_node == layout.num_joints
    adjacency = graph.A.sum(0)
    assert (adjacency.sum(0) > 0).all()  # no isolated joint


def test_left_right_joints_mirror():
    for layout in (KINECT_V1_20, NTU_25, COCO_17):
        for j, name in enumerate(layout.joint_names):
            if name.startswith("left_"):
                assert layout.joint_names.index("right_" + name[5:]) != j
    assert COCO_17.dims == 2 and NTU_25.dims == 3


def test_layout_for_checks_joint_counts():
    assert layout_for(20) is KINECT_V1_20
    assert layout_for(17) is COCO_17
    with pytest.raises(ZsarError, match="18 joints"):
        layout_for(18)
    with pytest.raises(ZsarError, match="has 25"):
        layout_for(20, "ntu_25", where="x.pkl")
