#include "causal_attention.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

// The system BLAS that libtorch itself calls (OpenBLAS on Debian); the standard CBLAS ABI.
extern "C" void cblas_sgemm(int layout, int trans_a, int trans_b, int m, int n, int k, float alpha,
                            const float* a, int lda, const float* b, int ldb, float beta, float* c,
                            int ldc);

namespace tune::llama {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

// C[m, n] = alpha * op(A) op(B), row-major, op = transpose when the flag says so.
void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          const float* b, float* c) {
  cblas_sgemm(kRowMajor, trans_a ? kTrans : kNoTrans, trans_b ? kTrans : kNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(trans_a ? m : k), b, static_cast<int>(trans_b ? k : n), 0.0f, c,
              static_cast<int>(n));
}

// Rotary embedding of one head's rows [T, D] in the rotate_half layout:
//   y[:h] = x[:h] cos[:h] - x[h:] sin[:h],  y[h:] = x[h:] cos[h:] + x[:h] sin[h:]   (h = D / 2)
void Rope(const float* x, const float* cos, const float* sin, int64_t tokens, int64_t dim,
          float* y) {
  const int64_t half = dim / 2;
  for (int64_t t = 0; t < tokens; ++t) {
    const float *xt = x + t * dim, *c = cos + t * dim, *s = sin + t * dim;
    float* yt = y + t * dim;
    for (int64_t d = 0; d < half; ++d) yt[d] = xt[d] * c[d] - xt[d + half] * s[d];
    for (int64_t d = half; d < dim; ++d) yt[d] = xt[d] * c[d] + xt[d - half] * s[d];
  }
}

// The transpose of Rope applied to a gradient g (in place is not allowed: g and dx differ).
void RopeBackward(const float* g, const float* cos, const float* sin, int64_t tokens, int64_t dim,
                  float* dx) {
  const int64_t half = dim / 2;
  for (int64_t t = 0; t < tokens; ++t) {
    const float *gt = g + t * dim, *c = cos + t * dim, *s = sin + t * dim;
    float* dt = dx + t * dim;
    for (int64_t d = 0; d < half; ++d) dt[d] = gt[d] * c[d] + gt[d + half] * s[d + half];
    for (int64_t d = half; d < dim; ++d) dt[d] = gt[d] * c[d] - gt[d - half] * s[d - half];
  }
}

// Row i of scores [T, T] becomes softmax over columns 0..i; columns past i become 0.
void CausalSoftmaxRows(float* scores, int64_t tokens) {
  for (int64_t i = 0; i < tokens; ++i) {
    float* row = scores + i * tokens;
    float max = row[0];
    for (int64_t j = 1; j <= i; ++j) max = std::max(max, row[j]);
    float sum = 0.0f;
    for (int64_t j = 0; j <= i; ++j) {
      row[j] = std::exp(row[j] - max);
      sum += row[j];
    }
    const float inverse = 1.0f / sum;
    for (int64_t j = 0; j <= i; ++j) row[j] *= inverse;
    for (int64_t j = i + 1; j < tokens; ++j) row[j] = 0.0f;
  }
}

// dP (in place) becomes dS = scale * P * (dP - rowsum(P * dP)).
void SoftmaxBackwardRows(const float* probs, float* grad, int64_t tokens, float scale) {
  for (int64_t i = 0; i < tokens; ++i) {
    const float* p = probs + i * tokens;
    float* g = grad + i * tokens;
    float dot = 0.0f;
    for (int64_t j = 0; j <= i; ++j) dot += p[j] * g[j];
    for (int64_t j = 0; j <= i; ++j) g[j] = scale * p[j] * (g[j] - dot);
    for (int64_t j = i + 1; j < tokens; ++j) g[j] = 0.0f;
  }
}

class CausalAttentionFunction : public torch::autograd::Function<CausalAttentionFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& q_in, const Tensor& k_in,
                        const Tensor& v_in, const Tensor& cos_in, const Tensor& sin_in,
                        double scale) {
    const Tensor q_raw = q_in.contiguous(), k_raw = k_in.contiguous(), v = v_in.contiguous();
    const Tensor cos = cos_in.contiguous(), sin = sin_in.contiguous();
    const int64_t heads = q_raw.size(0) * q_raw.size(1), tokens = q_raw.size(2),
                  dim = q_raw.size(3);
    Tensor q = torch::empty_like(q_raw), k = torch::empty_like(k_raw);  // rotated
    Tensor out = torch::empty_like(q);
    Tensor probs = torch::empty({q.size(0), q.size(1), tokens, tokens}, q.options());
    const float *qr = q_raw.data_ptr<float>(), *kr = k_raw.data_ptr<float>();
    const float *cp = cos.data_ptr<float>(), *sp = sin.data_ptr<float>();
    float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>();
    const float* vp = v.data_ptr<float>();
    float *op = out.data_ptr<float>(), *pp = probs.data_ptr<float>();
    const int64_t block = tokens * dim, square = tokens * tokens;
    at::parallel_for(0, heads, 1, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n) {
        Rope(qr + n * block, cp, sp, tokens, dim, qp + n * block);
        Rope(kr + n * block, cp, sp, tokens, dim, kp + n * block);
        float* p = pp + n * square;
        Gemm(false, true, tokens, tokens, dim, static_cast<float>(scale), qp + n * block,
             kp + n * block, p);
        CausalSoftmaxRows(p, tokens);
        Gemm(false, false, tokens, dim, tokens, 1.0f, p, vp + n * block, op + n * block);
      }
    });
    ctx->save_for_backward({q, k, v, probs, cos, sin});
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const Tensor &q = saved[0], &k = saved[1], &v = saved[2], &probs = saved[3];
    const float *cp = saved[4].data_ptr<float>(), *sp = saved[5].data_ptr<float>();
    const Tensor grad_out = grad_outputs[0].contiguous();
    const auto scale = static_cast<float>(ctx->saved_data["scale"].toDouble());
    const int64_t heads = q.size(0) * q.size(1), tokens = q.size(2), dim = q.size(3);
    Tensor dq = torch::empty_like(q), dk = torch::empty_like(k), dv = torch::empty_like(v);
    const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
    const float *pp = probs.data_ptr<float>(), *gp = grad_out.data_ptr<float>();
    float *dqp = dq.data_ptr<float>(), *dkp = dk.data_ptr<float>(), *dvp = dv.data_ptr<float>();
    const int64_t block = tokens * dim, square = tokens * tokens;
    at::parallel_for(0, heads, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> ds(static_cast<size_t>(square));
      std::vector<float> rotated(static_cast<size_t>(block));
      for (int64_t n = begin; n < end; ++n) {
        const float* p = pp + n * square;
        const float* go = gp + n * block;
        Gemm(true, false, tokens, dim, tokens, 1.0f, p, go, dvp + n * block);         // dV = P^T dO
        Gemm(false, true, tokens, tokens, dim, 1.0f, go, vp + n * block, ds.data());  // dO V^T
        SoftmaxBackwardRows(p, ds.data(), tokens, scale);
        // Gradients of the rotated q and k, then through the rotation.
        Gemm(false, false, tokens, dim, tokens, 1.0f, ds.data(), kp + n * block, rotated.data());
        RopeBackward(rotated.data(), cp, sp, tokens, dim, dqp + n * block);
        Gemm(true, false, tokens, dim, tokens, 1.0f, ds.data(), qp + n * block, rotated.data());
        RopeBackward(rotated.data(), cp, sp, tokens, dim, dkp + n * block);
      }
    });
    return {dq, dk, dv, Tensor(), Tensor(), Tensor()};
  }
};

}  // namespace

Tensor CausalAttention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& cos,
                       const Tensor& sin, double scale) {
  return CausalAttentionFunction::apply(q, k, v, cos, sin, scale);
}

}  // namespace tune::llama
