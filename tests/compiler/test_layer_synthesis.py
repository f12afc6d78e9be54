from hbnn.compiler.budget import layer_groups
from hbnn.compiler.ir import Folding
from hbnn.compiler.layer_synthesis import synthesize_layers
from hbnn.compiler.lower import lower_model
from hbnn.compiler.map_to_hardware import map_stages
from hbnn.compiler.pipeline import compile_graph
from hbnn.sim.conv_fuzz import ConvCase, ConvLayer, random_conv_stack


def test_each_layer_is_synthesized_alone(tmp_path):
    # int8 conv with a max pool, binary conv, int8 linear head: DSPs where the multiply lanes are, none elsewhere.
    case = ConvCase(1, 6, (ConvLayer("int8", 2, 3, 1, 1, "2"), ConvLayer("binary", 4, 3, 1, 1, None)), "flatten",
                    "int8", 3, ((2, 1), (2, 2), (3, 4)), (1,), 1, 0)
    graph = compile_graph(lower_model(random_conv_stack(case), (1, 6, 6)),
                          {"features.0": Folding(2, 1), "features.4": Folding(2, 2), "classifier": Folding(3, 4)})
    stages = map_stages(graph)
    names = [name for name, _ in layer_groups(stages)]
    for stage in stages:
        stage.component._MustUse__silence = True
    seen = []
    results = synthesize_layers(graph, "xc7", tmp_path, progress=seen.append)
    assert [name for name, _ in results] == names and len(seen) == len(names)
    dsps = {name: resources.dsps for name, resources in results}
    assert dsps[names[0]] == 2 and dsps[names[-1]] == 12
    assert all(dsps[name] == 0 for name in names[1:-1])
    assert all((tmp_path / f"{name}.v").exists() and (tmp_path / f"{name}.yosys.log").exists() for name in names)
