"""The benchmark's FLOP counts (benchmarks/floor.py) against hand counts."""
from benchmarks import floor


def test_network_flops_of_one_conv_by_hand():
    flops = floor.network_flops(8, 12, ["relu1_1"])
    assert flops["per_conv"] == {"conv1_1": 2 * 3 * 64 * 9 * 8 * 12} and flops["total"] == 2 * flops["forward"]


def test_winograd_products_are_a_quarter_of_direct_on_whole_blocks():
    """36 multiply-adds per 4×4 block instead of 16·9: a quarter when every map is whole blocks (256² to
    relu5_1; conv5_1's 16×16 map is 16 blocks, too few to pay)."""
    counted = floor.winograd_flops(256, 256, ["relu5_1"])
    assert counted["convs"] == ["conv3_1", "conv3_2", "conv3_3", "conv3_4", "conv4_1", "conv4_2", "conv4_3",
                                "conv4_4"]
    assert counted["products"] * 4 == counted["direct"]
    direct = floor.network_flops(256, 256, ["relu5_1"])["per_conv"]
    assert counted["direct"] == 2 * sum(direct[name] for name in counted["convs"])
