"""Network slimming: FLOPs counted by hand, lowest |gamma| pruned first, masks equal to physical pruning, training."""
import copy
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hbnn.quant import load_dataset
from hbnn.quant.layers import ExactBatchNorm2d
from hbnn.quant.metrics import measure
from hbnn.quant.models import build_model
from hbnn.quant.selection import BudgetUnreachableError
from hbnn.quant.selection.slimming import (ChannelPruning, add_sparsity_gradient, apply_channel_pruning,
                                           channels_for_budget, prunable_blocks, sparsity_penalty, train_slimmed)

BLOCKS = [f"stage{stage}.{block}" for stage in (1, 2, 3) for block in range(3)]
WIDTHS = {block: 16 * 2 ** (int(block[5]) - 1) for block in BLOCKS}


def tiny(full_precision="int8", seed=0, **options):
    torch.manual_seed(seed)
    return build_model("cresnet20", precision="fp", in_channels=1, num_classes=10, image_size=8,
                       full_precision=full_precision, **options)


# Hand count for cresnet20 on 1x8x8 images, MACs per layer = output elements x (in channels x 3 x 3):
# stem 16x8x8 x 1x9; stage 1 (8x8): every conv 16x64 x 16x9; stage 2 (4x4): stage2.0.conv1 reads 16 channels,
# every other conv 32; stage 3 (2x2) likewise with 32 and 64; fc 64 x 10.
STEM, FC = 16 * 64 * 9, 640
FULL_CONV = {1: 16 * 64 * 16 * 9, 2: 32 * 16 * 32 * 9, 3: 64 * 4 * 64 * 9}
REFERENCE = STEM + FC + sum(6 * FULL_CONV[stage] for stage in (1, 2, 3)) - FULL_CONV[2] // 2 - FULL_CONV[3] // 2


def channel_cost(block):
    """FLOPs one internal channel of a block costs: its share of conv1's outputs and of conv2's inputs."""
    stage = int(block[5])
    conv1 = FULL_CONV[stage] // (2 if stage > 1 and block.endswith(".0") else 1)
    return conv1 // WIDTHS[block] + FULL_CONV[stage] // WIDTHS[block]


def set_gammas(model, small):
    """Every prunable gamma 1 + channel / 100, except the {(block, channel): value} given."""
    with torch.no_grad():
        for name, block in prunable_blocks(model).items():
            block.bn1.weight.copy_(1 + torch.arange(block.bn1.num_features) / 100)
            for (where, channel), value in small.items():
                if where == name:
                    block.bn1.weight[channel] = value


def test_hand_count_agrees_with_metrics():
    model = tiny()
    assert measure(model, (1, 8, 8)).flops == REFERENCE
    assert list(prunable_blocks(model)) == BLOCKS


def test_lowest_gammas_go_first_and_flops_are_exact():
    model = tiny()
    set_gammas(model, {("stage1.0", 5): 0.01, ("stage1.0", 9): -0.015, ("stage2.1", 7): 0.02,
                       ("stage3.2", 3): 0.5})
    pruned_flops = REFERENCE - 2 * channel_cost("stage1.0") - channel_cost("stage2.1")
    fraction = (pruned_flops + channel_cost("stage2.1") / 2) / REFERENCE  # needs exactly those three channels
    pruning = channels_for_budget(model, (1, 8, 8), fraction)
    assert pruning.reference_flops == REFERENCE
    assert pruning.flops == pruned_flops
    assert pruning.flops <= fraction * REFERENCE
    assert pruning.kept["stage1.0"] == tuple(c for c in range(16) if c not in (5, 9))
    assert pruning.kept["stage2.1"] == tuple(c for c in range(32) if c != 7)
    assert all(pruning.kept[block] == tuple(range(WIDTHS[block])) for block in BLOCKS
               if block not in ("stage1.0", "stage2.1"))
    assert pruning.fraction == pruned_flops / REFERENCE


def test_full_budget_prunes_nothing():
    model = tiny()
    pruning = channels_for_budget(model, (1, 8, 8), 1.0)
    assert pruning.flops == REFERENCE
    assert all(len(kept) == WIDTHS[block] for block, kept in pruning.kept.items())


def test_every_block_keeps_its_largest_gamma_channel():
    model = tiny()
    set_gammas(model, {("stage1.1", channel): 1e-4 * (channel + 1) for channel in range(16)})
    pruning = channels_for_budget(model, (1, 8, 8), 0.3)
    assert pruning.flops <= 0.3 * REFERENCE
    assert pruning.kept["stage1.1"] == (15,)
    assert all(len(kept) >= 1 for kept in pruning.kept.values())


def test_unreachable_budget_raises_with_the_minimum():
    model = tiny()
    minimum = REFERENCE - sum((WIDTHS[block] - 1) * channel_cost(block) for block in BLOCKS)
    with pytest.raises(BudgetUnreachableError, match=f"{minimum:,.0f} FLOPs"):
        channels_for_budget(model, (1, 8, 8), 0.5 * minimum / REFERENCE)
    assert channels_for_budget(model, (1, 8, 8), minimum / REFERENCE).flops == minimum


def test_slimming_is_for_cresnet20_only():
    model = build_model("resnet14", precision="fp", in_channels=1, num_classes=10, image_size=8)
    with pytest.raises(ValueError, match="resnet14"):
        channels_for_budget(model, (1, 8, 8), 0.5)
    with pytest.raises(ValueError, match="fraction"):
        channels_for_budget(tiny(), (1, 8, 8), 0.0)


def test_channel_pruning_round_trips_through_json():
    pruning = channels_for_budget(tiny(), (1, 8, 8), 0.6)
    again = ChannelPruning.from_dict(json.loads(json.dumps(pruning.as_dict())))
    assert again == pruning
    with pytest.raises(ValueError, match="ascending"):
        ChannelPruning(kept={"stage1.0": (3, 1)}, flops=1.0, reference_flops=2.0)


def test_sparsity_penalty_and_its_gradient_hook():
    model = tiny(full_precision="float")
    set_gammas(model, {("stage1.0", 0): -2.0, ("stage3.1", 4): 0.0})
    gammas = [block.bn1.weight for block in prunable_blocks(model).values()]
    penalty = float(sparsity_penalty(model).detach())
    assert penalty == pytest.approx(sum(float(g.detach().abs().sum()) for g in gammas))
    assert penalty > float(gammas[0].detach().abs().sum())  # every block counts
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])

    def gradients(penalized_loss):
        model.zero_grad()
        loss = F.cross_entropy(model(x), y)
        (loss + 1e-2 * sparsity_penalty(model) if penalized_loss else loss).backward()
        return [g.grad.clone() for g in gammas]

    expected = gradients(penalized_loss=True)
    handles = add_sparsity_gradient(model, 1e-2)
    hooked = gradients(penalized_loss=False)
    for handle in handles:
        handle.remove()
    plain = gradients(penalized_loss=False)
    for want, got, without in zip(expected, hooked, plain):
        torch.testing.assert_close(got, want)
    assert not all(torch.allclose(want, without) for want, without in zip(expected, plain))


def physically_pruned(model, pruning):
    """A copy of a float model whose blocks have only the kept internal channels: sliced conv1, bn1, conv2."""
    pruned = copy.deepcopy(model)
    for name, block in prunable_blocks(pruned).items():
        kept = list(pruning.kept[name])
        conv1, bn1, conv2 = block.conv1, block.bn1, block.conv2
        small1 = nn.Conv2d(conv1.in_channels, len(kept), 3, stride=conv1.stride, padding=1, bias=False)
        small_bn = ExactBatchNorm2d(len(kept))
        small2 = nn.Conv2d(len(kept), conv2.out_channels, 3, padding=1, bias=False)
        with torch.no_grad():
            small1.weight.copy_(conv1.weight[kept])
            small2.weight.copy_(conv2.weight[:, kept])
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(small_bn, key).copy_(getattr(bn1, key)[kept])
        block.conv1, block.bn1, block.conv2 = small1, small_bn, small2
    return pruned.double()


def randomized_batch_norms(model):
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                size = module.num_features
                module.weight.copy_(torch.randn(size, generator=generator))
                module.bias.copy_(torch.randn(size, generator=generator))
                module.running_mean.copy_(torch.randn(size, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
    return model


def test_masked_network_computes_the_physically_pruned_network():
    model = randomized_batch_norms(tiny(full_precision="float", seed=1)).eval()
    pruning = channels_for_budget(model, (1, 8, 8), 0.5)
    assert any(len(kept) < WIDTHS[block] for block, kept in pruning.kept.items())
    apply_channel_pruning(model, pruning)
    reference = physically_pruned(model, pruning)
    model = model.double()
    x = torch.randn(6, 1, 8, 8, dtype=torch.float64)
    unmasked_model = randomized_batch_norms(tiny(full_precision="float", seed=1)).double().eval()
    assert not torch.allclose(unmasked_model(x), model(x))  # the mask matters
    torch.testing.assert_close(model.eval()(x), reference.eval()(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(model.train()(x), reference.train()(x), rtol=1e-12, atol=1e-12)


def test_pruned_channels_contribute_nothing():
    model = tiny(full_precision="float").eval()
    pruning = channels_for_budget(model, (1, 8, 8), 0.7)
    apply_channel_pruning(model, pruning)
    x = torch.randn(4, 1, 8, 8)
    before = model(x)
    with torch.no_grad():
        for name, block in prunable_blocks(model).items():
            pruned = [c for c in range(WIDTHS[name]) if c not in pruning.kept[name]]
            block.conv1.weight[pruned] = torch.randn_like(block.conv1.weight[pruned])
            block.bn1.running_mean[pruned] += 3.0
    assert torch.equal(model(x), before)
    with torch.no_grad():
        block = prunable_blocks(model)["stage1.0"]
        block.conv1.weight[pruning.kept["stage1.0"][0]] += 1.0  # a kept channel does contribute
    assert not torch.equal(model(x), before)


def test_masks_hold_through_optimizer_steps():
    model = tiny(full_precision="float")
    pruning = channels_for_budget(model, (1, 8, 8), 0.6)
    apply_channel_pruning(model, pruning)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, weight_decay=1e-3)
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    blocks = prunable_blocks(model).values()
    for _ in range(3):
        optimizer.zero_grad()
        # Behind a ReLU a zeroed channel already has zero gradients; the plain sum of gammas and betas gives
        # every entry a gradient of 1, which only the hooks take away from the pruned ones.
        loss = F.cross_entropy(model(x), y) + sum(block.bn1.weight.sum() + block.bn1.bias.sum() for block in blocks)
        loss.backward()
        optimizer.step()
    for name, block in prunable_blocks(model).items():
        pruned = [c for c in range(WIDTHS[name]) if c not in pruning.kept[name]]
        assert torch.all(block.bn1.weight[pruned] == 0) and torch.all(block.bn1.bias[pruned] == 0), name


def test_masking_refuses_blocks_that_feed_a_binary_conv2():
    model = tiny(layer_precisions={"stage2.1.conv2": "binary"})
    pruning = channels_for_budget(model, (1, 8, 8), 0.8)
    with pytest.raises(ValueError, match="stage2.1.act1"):
        apply_channel_pruning(model, pruning)


def test_train_slimmed_prunes_to_the_budget_and_keeps_the_masks():
    dataset = load_dataset("synthetic")
    channels, size, _ = dataset.image_shape
    torch.manual_seed(0)
    # Float layers: the int8 network trains the same way (masks and hooks act on batch-norm only), 5x slower.
    model = build_model("cresnet20", precision="fp", in_channels=channels, num_classes=dataset.classes,
                        image_size=size, full_precision="float")
    before = {name: block.conv2.weight.clone() for name, block in prunable_blocks(model).items()}
    logged = []
    history, pruning = train_slimmed(model, dataset, 0.6, epochs=3, sparsity=1e-3, progress=False,
                                     batch_size=100, log=logged.append)
    assert [(record["epoch"], record["phase"]) for record in history] == \
        [(1, "sparsity"), (2, "sparsity"), (3, "fine-tune")]
    assert logged == history
    assert pruning.flops <= 0.6 * pruning.reference_flops
    assert pruning.reference_flops == measure(model, dataset.image_shape).flops
    pruned_any = False
    for name, block in prunable_blocks(model).items():
        pruned = [c for c in range(block.bn1.num_features) if c not in pruning.kept[name]]
        pruned_any |= bool(pruned)
        assert torch.all(block.bn1.weight[pruned] == 0) and torch.all(block.bn1.bias[pruned] == 0), name
        assert torch.all(block.bn1.weight[list(pruning.kept[name])] != 0), name
        assert not torch.equal(block.conv2.weight, before[name]), name  # it trained
    assert pruned_any


def test_train_slimmed_checks_its_arguments():
    dataset = load_dataset("synthetic")
    model = build_model("cresnet20", precision="fp", in_channels=1, num_classes=4, image_size=4)
    with pytest.raises(ValueError, match="epochs"):
        train_slimmed(model, dataset, 0.5, epochs=1, progress=False)
    with pytest.raises(ValueError, match="full-precision"):
        train_slimmed(build_model("cresnet20", precision="binary", in_channels=1, num_classes=4, image_size=4),
                      dataset, 0.5, epochs=2, progress=False)
