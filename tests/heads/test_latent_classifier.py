from __future__ import annotations

import pytest
import torch

from zsar.heads.latent_classifier import train_latent_classifiers
from zsar.heads.sadvae_model import train_latent_classifier


@pytest.mark.parametrize("relu_logits", [False, True])
def test_stacked_classifiers_equal_the_step_by_step_reference(relu_logits):
    """K classifiers trained as one stacked model with the written-out gradient and Adam step give the
    reference's (autograd, torch's Adam, one classifier at a time) weights and logits up to float rounding."""
    generator = torch.Generator().manual_seed(0)
    samples = torch.randn(4, 90, 6, generator=generator) + torch.arange(90)[None, :, None] % 3
    labels = torch.arange(3).repeat_interleave(30)
    stacked = train_latent_classifiers(samples, labels, 3, 120, 1e-2, relu_logits, seed=5)
    for k in range(len(samples)):
        reference = train_latent_classifier(samples[k], labels, 3, 120, 1e-2, relu_logits, seed=5)
        torch.testing.assert_close(stacked.weight[k], reference.weight.detach(), atol=2e-6, rtol=1e-5)
        torch.testing.assert_close(stacked.bias[k], reference.bias.detach(), atol=2e-6, rtol=1e-5)
        with torch.no_grad():
            expected = reference(samples[k])
            expected = torch.relu(expected) if relu_logits else expected
        torch.testing.assert_close(stacked.logits(k, samples[k]), expected, atol=1e-5, rtol=1e-5)
    # the sets differ, so the classifiers do too (the stack does not tie them)
    assert not torch.allclose(stacked.weight[0], stacked.weight[1])
