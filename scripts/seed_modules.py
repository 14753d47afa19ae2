#!/usr/bin/env python3
"""PyTorch Mixture-of-Experts seed modules, re-indented copies.

The reference implementations that scripts/make_model_fixtures.py runs to
produce fixtures/models/.  They come from two seed files (kept outside the
repository, in /work/shared/seeds/):

* moe_pytorch_mixtral_switch.txt - `Expert`, `TopKRouter`,
  `MixtureOfExperts`, `SwitchTransformer`, `MixtralBlock`.  That file lost all
  its indentation; the classes below restore it without changing the logic
  (statements, their order, comments and docstrings are as in the seed).
* moe_basic_sparse_notebook.txt - `BasicExpert`, `BasicMOE`, `MOEConfig`,
  `MOERouter`, `SparseMOE` (a notebook export, already indented).

Left out on purpose: the seed files' top-level demo code (the `__main__`
usage block of the first file, `test_basic_moe()` / `test_token_level_moe()`
and their module-level calls in the notebook), which would run on import.

Added here (not in any seed): `SharedExpertSparseMOE`, `SparseMOE` plus
always-on shared experts (see its comment).

Known quirks of the seeds, kept as they are (the fixtures capture them):
* `BasicMOE.forward` concatenates the expert outputs twice (the second result
  overwrites the first; harmless).
* `MixtureOfExperts.forward` accumulates the gated expert outputs in expert
  index order (expert loop outside, k loop inside), and recomputes the router
  logits (without noise) for `aux_loss`.
* `SwitchTransformer` computes `capacity = int(capacity_factor * seq_len /
  num_experts)` from seq_len only, but counts the tokens routed to an expert
  over the whole batch, so with batch > 1 tokens are dropped heavily.  Dropped
  tokens get an all-zero output (no residual inside the module), and the kept
  tokens' expert outputs are NOT multiplied by the router probability.
* `MOEConfig.shared_experts_number` (default 2) is ignored by `SparseMOE`.
"""

from __future__ import annotations

from typing import Tuple  # noqa: F401  (imported by the seed)

import torch
import torch.nn as nn
import torch.nn.functional as F


# ===========================================================================
# From moe_pytorch_mixtral_switch.txt ("MoE em PyTorch").
# ===========================================================================

# Seed: moe_pytorch_mixtral_switch.txt.  Change: indentation restored only.
class Expert(nn.Module):
    """Single Expert - FFN especializado"""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.w1 = nn.Linear(d_model, d_ff)
        self.w2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x):
        # FFN: x -> ReLU(xW1) -> Dropout -> W2
        return self.w2(self.dropout(F.relu(self.w1(x))))


# Seed: moe_pytorch_mixtral_switch.txt.  Change: indentation restored only.
class TopKRouter(nn.Module):
    """Router que seleciona top-k experts por token"""

    def __init__(self, d_model: int, num_experts: int, k: int = 2):
        super().__init__()
        self.k = k
        self.num_experts = num_experts
        # Router network: linear projection
        self.router = nn.Linear(d_model, num_experts)
        # Noise para load balancing (opcional)
        self.noise_std = 1e-2

    def forward(self, x: torch.Tensor, training: bool = False):
        """
        Args:
            x: [batch_size, seq_len, d_model]
        Returns:
            gates: [batch_size, seq_len, k] - pesos dos experts
            indices: [batch_size, seq_len, k] - índices dos experts
        """
        # Router logits
        logits = self.router(x)  # [B, L, num_experts]
        # Adiciona noise durante treinamento (load balancing)
        if training:
            noise = torch.randn_like(logits) * self.noise_std
            logits = logits + noise
        # Softmax sobre experts
        probs = F.softmax(logits, dim=-1)
        # Seleciona top-k experts
        gates, indices = torch.topk(probs, self.k, dim=-1)
        # Renormaliza gates
        gates = gates / gates.sum(dim=-1, keepdim=True)
        return gates, indices

    def compute_load_balancing_loss(self, logits: torch.Tensor):
        """Loss para balancear carga entre experts"""
        # Queremos distribuição uniforme de tokens por expert
        probs = F.softmax(logits, dim=-1)
        # Fração de tokens por expert
        expert_counts = probs.sum(dim=[0, 1])  # [num_experts]
        expert_fracs = expert_counts / expert_counts.sum()
        # Penaliza desvio de distribuição uniforme
        target = 1.0 / self.num_experts
        load_loss = ((expert_fracs - target) ** 2).sum()
        return load_loss


# Seed: moe_pytorch_mixtral_switch.txt.  Change: indentation restored only.
class MixtureOfExperts(nn.Module):
    """Layer MoE completo - Mixtral-style"""

    def __init__(
        self,
        d_model: int = 4096,
        d_ff: int = 14336,
        num_experts: int = 8,
        k: int = 2,  # Experts ativos por token
    ):
        super().__init__()
        self.num_experts = num_experts
        self.k = k
        # Cria experts
        self.experts = nn.ModuleList([
            Expert(d_model, d_ff) for _ in range(num_experts)
        ])
        # Router
        self.router = TopKRouter(d_model, num_experts, k)

    def forward(self, x: torch.Tensor):
        """
        Args:
            x: [batch_size, seq_len, d_model]
        Returns:
            output: [batch_size, seq_len, d_model]
            aux_loss: scalar - load balancing loss
        """
        batch_size, seq_len, d_model = x.shape
        # Router decide experts
        gates, indices = self.router(x, training=self.training)
        # gates: [B, L, k], indices: [B, L, k]
        # Flatten para processar
        x_flat = x.view(-1, d_model)  # [B*L, d_model]
        gates_flat = gates.view(-1, self.k)  # [B*L, k]
        indices_flat = indices.view(-1, self.k)  # [B*L, k]
        # Output acumulado
        output_flat = torch.zeros_like(x_flat)
        # Processa cada expert
        for expert_idx in range(self.num_experts):
            # Encontra tokens roteados para este expert
            expert_mask = (indices_flat == expert_idx)
            if not expert_mask.any():
                continue
            # Tokens e gates deste expert
            token_indices = expert_mask.any(dim=1).nonzero(as_tuple=True)[0]
            expert_input = x_flat[token_indices]
            # Processa com expert
            expert_output = self.experts[expert_idx](expert_input)
            # Aplica gates e acumula
            for k_idx in range(self.k):
                mask_k = expert_mask[:, k_idx]
                if mask_k.any():
                    gate_weights = gates_flat[mask_k, k_idx].unsqueeze(1)
                    output_flat[mask_k] += gate_weights * expert_output[mask_k[token_indices]]
        # Reshape
        output = output_flat.view(batch_size, seq_len, d_model)
        # Load balancing loss
        aux_loss = self.router.compute_load_balancing_loss(
            self.router.router(x)
        )
        return output, aux_loss


# Seed: moe_pytorch_mixtral_switch.txt.  Change: indentation restored only.
# The one place where the lost indentation had to be inferred: the
# `if len(token_indices[0]) > 0:` block sits at the level of the capacity
# check (inside the expert loop, after it), otherwise experts under capacity
# would never run.
class SwitchTransformer(nn.Module):
    """Switch Transformer: 1 expert por token"""

    def __init__(self, d_model: int, num_experts: int, capacity_factor: float = 1.25):
        super().__init__()
        self.num_experts = num_experts
        self.capacity_factor = capacity_factor
        self.experts = nn.ModuleList([
            Expert(d_model, d_model * 4) for _ in range(num_experts)
        ])
        self.router = nn.Linear(d_model, num_experts)

    def forward(self, x: torch.Tensor):
        batch_size, seq_len, d_model = x.shape
        # Router escolhe 1 expert por token
        logits = self.router(x)
        expert_indices = logits.argmax(dim=-1)  # [B, L]
        expert_probs = F.softmax(logits, dim=-1)
        # Capacity: max tokens por expert
        capacity = int(self.capacity_factor * seq_len / self.num_experts)
        output = torch.zeros_like(x)
        # Processa por expert com capacity limit
        for expert_idx in range(self.num_experts):
            mask = (expert_indices == expert_idx)
            token_indices = mask.nonzero(as_tuple=True)
            # Limita por capacity
            if len(token_indices[0]) > capacity:
                # Prioriza por probabilidade
                token_probs = expert_probs[mask][:, expert_idx]
                top_indices = token_probs.topk(capacity).indices
                # Filtra
                token_indices = (
                    token_indices[0][top_indices],
                    token_indices[1][top_indices]
                )
            if len(token_indices[0]) > 0:
                expert_input = x[token_indices]
                expert_output = self.experts[expert_idx](expert_input)
                output[token_indices] = expert_output
        return output


# Modelo completo estilo Mixtral
# Seed: moe_pytorch_mixtral_switch.txt.  Change: indentation restored only.
class MixtralBlock(nn.Module):
    """Transformer block com MoE FFN"""

    def __init__(self, d_model=4096, n_heads=32, num_experts=8, k=2):
        super().__init__()
        # Self-attention (denso)
        self.attn = nn.MultiheadAttention(
            d_model, n_heads, batch_first=True
        )
        # MoE FFN (esparso)
        self.moe = MixtureOfExperts(d_model, d_model * 4, num_experts, k)
        # Layer norms
        self.ln1 = nn.LayerNorm(d_model)
        self.ln2 = nn.LayerNorm(d_model)

    def forward(self, x):
        # Self-attention com residual
        attn_out, _ = self.attn(x, x, x)
        x = x + attn_out
        x = self.ln1(x)
        # MoE FFN com residual
        moe_out, aux_loss = self.moe(x)
        x = x + moe_out
        x = self.ln2(x)
        return x, aux_loss


# ===========================================================================
# From moe_basic_sparse_notebook.txt ("基础版理解MOE" notebook export).
# ===========================================================================

# Seed: moe_basic_sparse_notebook.txt (cell In [10]).  Change: whitespace only
# (PEP 8 spacing after commas / around operators).
class BasicExpert(nn.Module):
    def __init__(self, feature_in, feature_out):
        super().__init__()
        self.fc = nn.Linear(feature_in, feature_out)

    def forward(self, x):
        return self.fc(x)


# Seed: moe_basic_sparse_notebook.txt (cell In [12]).  Change: whitespace only
# (the duplicated torch.concat is in the seed).
class BasicMOE(nn.Module):
    def __init__(self, feature_in, feature_out, num_experts):
        super().__init__()
        self.gate = nn.Linear(feature_in, num_experts)
        # output shape (batch_size, num_export)
        self.experts = nn.ModuleList(
            BasicExpert(
                feature_in, feature_out
            ) for _ in range(num_experts)
        )

    def forward(self, x):
        # x shape is(batch, feature_in)
        expert_weights = self.gate(x)
        expert_out_list = [
            expert(x) for expert in self.experts
        ]  # 每一个expert输出一个（batch, feature_out)

        expert_outputs = [
            expert_out.unsqueeze(1)
            for expert_out in expert_out_list
        ]

        # expert out 是(b,1,feature_out)
        expert_output = torch.concat(
            expert_outputs,
            dim=1,
        )

        # expert out 是(b,1,feature_out)
        expert_output = torch.concat(
            expert_outputs,
            dim=1,
        )
        # expert_output shape (b, num_experts,feature_out)

        # expert_weights
        expert_weights = F.softmax(expert_weights, dim=1)
        # expert_weights shape(b, num_experts)

        # (b ,1, num_experts)
        expert_weights = expert_weights.unsqueeze(1)
        # (batch,1,feature_out)  希望的输出
        output = expert_weights @ expert_output
        return output.squeeze(1)


# Seed: moe_basic_sparse_notebook.txt (cell In [38]).  Unchanged.
class MOEConfig:
    def __init__(
            self,
            hidden_dim,
            expert_number,
            top_k,
            shared_experts_number=2
            ):
        self.hidden_dim = hidden_dim
        self.expert_number = expert_number
        self.top_k = top_k
        self.shared_experts_number = shared_experts_number


# Seed: moe_basic_sparse_notebook.txt (cell In [38]).  Change: whitespace only
# (the `selected_expoerts_indices` spelling is the seed's).
class MOERouter(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.gate = nn.Linear(config.hidden_dim, config.expert_number)

        # 但是后面只会选 top_k 个专家

        self.expert_number = config.expert_number
        self.top_k = config.top_k

    def forward(self, x):

        # 假设 Expert number 是8，top_k 是2
        router_logits = self.gate(x)  # (batch * seq_len, expert_number)

        # 计算每一个专家的概率
        router_probs = F.softmax(router_logits, dim=1, dtype=torch.float)

        # topK是可以进行反向传播的  ，下面要求出topk专家的权重和索引
        # 这段代码的主要目的是为了实现一种机制，可以动态地为每个输入（或者每个时间步长的输入）
        # 选择最合适的几位专家，并获取这些专家的相关权重和索引，以便进一步处理或计算。
        router_weights, selected_expoerts_indices = torch.topk(
            router_probs,
            self.top_k,
            dim=-1
        )  # router_weights, selected_experts_indices
        # shape 都是(batch* seq_len, top_k)

        # 重新做一次归一化
        router_weights = router_weights / router_weights.sum(
            dim=-1, keepdim=True
        )

        router_weights = router_weights.to(x.dtype)

        expert_mask = F.one_hot(
            selected_expoerts_indices,
            num_classes=self.expert_number,
        )  # (batch * seq_len, top_k, expert_number)

        expert_mask = expert_mask.permute(2, 1, 0)
        # (expert_number, top_k, batch* seq_len)

        return router_logits, router_weights, selected_expoerts_indices, expert_mask
        # router_logits (batch* seq_len, expert_number)
        # router_weights (batch* seq_len, top_k)
        # router_logits (batch* seq_len, top_k)
        # router_logits (expert_number,top_k, batch * seq_len)


# Seed: moe_basic_sparse_notebook.txt (cell In [38]).  Change: whitespace only.
class SparseMOE(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.top_k = config.top_k
        self.hidden_dim = config.hidden_dim
        self.expert_number = config.expert_number

        # 初始化专家
        self.experts = nn.ModuleList(
            BasicExpert(
                config.hidden_dim,
                config.hidden_dim,
            ) for _ in range(config.expert_number)
        )
        self.router = MOERouter(self.config)

    def forward(self, x):
        # x shape (batch, seq_len, hidden_dim)

        batch_size, seq_len, hidden_dim = x.size()

        # token 维度计算, x reshape (batch * seq_len, hidden_dim)
        hidden_states = x.view(-1, hidden_dim)
        # 做相关的专家计算
        router_logits, router_weights, selected_experts_indices, expert_mask = self.router(
            hidden_states
        )

        # expert_mask shape (expert_number, top_k, batch* seq_len)
        # 最终肯定是 (batch*seq_len, hidden_dim)
        final_hidden_states = torch.zeros(
            (batch_size * seq_len, hidden_dim),
            dtype=hidden_states.dtype,
            device=hidden_states.device

        )

        # 遍历每一个专家
        # 把选中这个专家的token的hidden_states 加到 final_hidden_states 中
        # export = 0 可能是有100个token被选中
        # token 的总数是 batch * seq_len

        for expert_idx in range(self.expert_number):
            expert_layer = self.experts[expert_idx]

            current_expert_mask = expert_mask[expert_idx]

            router_weights_idx, top_x = torch.where(current_expert_mask)
            # idx 是0 or 1  假设TopK 是2
            # 表示这个toekn是作为当前专家的 top1 还是 top2

            # top_x 是token 在 batch * seq_len 中的位置索引、
            # 例如对于 batch_size=2, seq_len=4 的输入
            # top_X 的直范围是0-7, 表示在展评后的8个token中的位置
            # 都是一个一维的直
            # idx 肯定是用来选 Weight
            # top_x 用来选 hidden_states

            # hidden_states # shape 是 (1, batch * seq_len, hidden_dim)
            current_state = hidden_states.unsqueeze(
                0
            )[:, top_x, :].reshape(-1, hidden_dim)

            current_state = expert_layer(current_state)
            # current_state shape (selected_token_number, hidden_dim)
            # 100个 token 选中了
            # router_weights Shape 是 (batch * seq_len, top_k)
            current_token_router_weight = router_weights[top_x, router_weights_idx]
            # 最终的 current_token_router_weight shape
            # 就变成了 （selected_token_number)
            current_token_router_weight = current_token_router_weight.unsqueeze(-1)
            # 最终的 current_token_router_weight share
            # 就变成了 （selected_token_number,1)

            # (selected_token_number, hidden_dim)
            # (seletted_token_number,1) 这里有广播

            current_hidden_states = current_state * current_token_router_weight

            # 把当前专家的输出加到 final_hidden_states 中
            final_hidden_states.index_add_(
                0,
                top_x,
                current_hidden_states.to(hidden_states.dtype)
            )

        # 把 final_hidden_states 还原到原来的shape
        final_hidden_states = final_hidden_states.reshape(batch_size, seq_len, hidden_dim)

        return final_hidden_states, router_logits  # shape 是 (b*s, expert_number)


# ===========================================================================
# Not from a seed.
# ===========================================================================

# NEW (not in any seed file): SparseMOE (moe_basic_sparse_notebook.txt) plus
# `config.shared_experts_number` always-active shared experts, each a
# BasicExpert(hidden_dim, hidden_dim) applied to every token of x.  Their
# outputs are summed in index order (shared_0 + shared_1 + ...), and that sum
# is added to SparseMOE's output: out = sparse + (s_0 + s_1 + ...).
# router_logits are returned unchanged.  state_dict keys:
# experts.{i}.fc.{weight,bias}, router.gate.{weight,bias},
# shared_experts.{i}.fc.{weight,bias}.
class SharedExpertSparseMOE(SparseMOE):
    def __init__(self, config):
        super().__init__(config)
        hidden_dim = config.hidden_dim
        self.shared_experts = nn.ModuleList(
            BasicExpert(hidden_dim, hidden_dim) for _ in range(config.shared_experts_number)
        )

    def forward(self, x):
        sparse_out, router_logits = super().forward(x)
        if len(self.shared_experts) == 0:
            return sparse_out, router_logits
        shared = self.shared_experts[0](x)
        for expert in self.shared_experts[1:]:
            shared = shared + expert(x)
        return sparse_out + shared, router_logits


__all__ = [
    "Expert", "TopKRouter", "MixtureOfExperts", "SwitchTransformer", "MixtralBlock",
    "BasicExpert", "BasicMOE", "MOEConfig", "MOERouter", "SparseMOE",
    "SharedExpertSparseMOE",
]
