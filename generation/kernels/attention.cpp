// Attention over an fp16 KV cache, for decoding on CPUs without native half-precision math (AVX2 + F16C).
//
// Reading the cache is what limits long-patent decoding: at 1,024 tokens of context an fp32 cache is
// read at ~1 GB per step. Stored as fp16 it is half the bytes; this kernel widens each row to fp32 in
// registers (F16C), so the arithmetic stays fp32. Each (sequence, head, query row) attends exactly to
// its own positions 0..position, so sequences of different lengths waste no work.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <cmath>
#include <vector>

static inline float dot_half(const float* q, const at::Half* k, int64_t d) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= d; i += 8) {
    __m256 kv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + i)));
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), kv, acc);
  }
  __m128 lo = _mm256_castps256_ps128(acc), hi = _mm256_extractf128_ps(acc, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_hadd_ps(lo, lo);
  lo = _mm_hadd_ps(lo, lo);
  float sum = _mm_cvtss_f32(lo);
  for (; i < d; ++i) sum += q[i] * static_cast<float>(k[i]);
  return sum;
}

// Dot products of q with 8 consecutive key rows at once: 8 accumulators, then one transposing reduction
// (a horizontal sum per key would cost as much as the products).
static inline __m256 dot8_half(const float* q, const at::Half* k, int64_t stride, int64_t d) {
  __m256 acc[8];
  for (int r = 0; r < 8; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t i = 0; i < d; i += 8) {
    const __m256 qv = _mm256_loadu_ps(q + i);
    for (int r = 0; r < 8; ++r) {
      const __m256 kv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + r * stride + i)));
      acc[r] = _mm256_fmadd_ps(qv, kv, acc[r]);
    }
  }
  const __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
  const __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(acc[4], acc[5]), _mm256_hadd_ps(acc[6], acc[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31));
}

// e^x for x <= 0 (scores minus their maximum), relative error ~2e-7: 2^n * p(r) with x = n ln2 + r.
static inline __m256 exp_nonpositive(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));  // below this e^x underflows anyway
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
}

// out = sum_j w[j] * v[j] for head size D: the output row stays in registers across all keys.
template <int D>
static inline void weighted_sum(const float* w, const at::Half* v, int64_t stride, int64_t length, float scale,
                                float* out) {
  __m256 acc[D / 8];
  for (int c = 0; c < D / 8; ++c) acc[c] = _mm256_setzero_ps();
  for (int64_t j = 0; j < length; ++j) {
    const __m256 wj = _mm256_set1_ps(w[j] * scale);
    const at::Half* row = v + j * stride;
    for (int c = 0; c < D / 8; ++c)
      acc[c] = _mm256_fmadd_ps(wj, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 8 * c))), acc[c]);
  }
  for (int c = 0; c < D / 8; ++c) _mm256_storeu_ps(out + 8 * c, acc[c]);
}

static inline void axpy_half(float a, const at::Half* v, float* out, int64_t d) {
  __m256 av = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= d; i += 8) {
    __m256 vv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i)));
    _mm256_storeu_ps(out + i, _mm256_fmadd_ps(av, vv, _mm256_loadu_ps(out + i)));
  }
  for (; i < d; ++i) out[i] += a * static_cast<float>(v[i]);
}

// query [n, heads, t, d] fp32; keys/values [n, heads, max_length, d] fp16 (a view of the cache);
// positions [n, t] int64: row r of sequence s attends to keys 0..positions[s][r]. Returns [n, heads, t, d].
torch::Tensor attend(torch::Tensor query, torch::Tensor keys, torch::Tensor values, torch::Tensor positions,
                     double scale) {
  TORCH_CHECK(query.scalar_type() == torch::kFloat && keys.scalar_type() == torch::kHalf);
  TORCH_CHECK(keys.stride(3) == 1 && values.stride(3) == 1 && keys.strides() == values.strides());
  query = query.contiguous();
  positions = positions.contiguous();
  const int64_t n = query.size(0), heads = query.size(1), t = query.size(2), d = query.size(3);
  auto output = torch::zeros_like(query);
  const float* q = query.data_ptr<float>();
  float* out = output.data_ptr<float>();
  const at::Half* k = keys.data_ptr<at::Half>();
  const at::Half* v = values.data_ptr<at::Half>();
  const int64_t* pos = positions.data_ptr<int64_t>();
  const int64_t ks0 = keys.stride(0), ks1 = keys.stride(1), ks2 = keys.stride(2);
  const float fscale = static_cast<float>(scale);

  at::parallel_for(0, n * heads * t, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t job = begin; job < end; ++job) {
      const int64_t s = job / (heads * t), h = (job / t) % heads, r = job % t;
      const int64_t length = pos[s * t + r] + 1;
      const float* qrow = q + ((s * heads + h) * t + r) * d;
      const at::Half* kbase = k + s * ks0 + h * ks1;
      const at::Half* vbase = v + s * ks0 + h * ks1;
      scores.resize(length + 8);
      const __m256 vscale = _mm256_set1_ps(fscale);
      int64_t j = 0;
      if (d % 8 == 0) {
        for (; j + 8 <= length; j += 8)
          _mm256_storeu_ps(&scores[j], _mm256_mul_ps(dot8_half(qrow, kbase + j * ks2, ks2, d), vscale));
      }
      for (; j < length; ++j) scores[j] = dot_half(qrow, kbase + j * ks2, d) * fscale;
      float best = -INFINITY;
      for (j = 0; j < length; ++j) best = std::max(best, scores[j]);
      // Pad to a whole vector with -inf: e^-inf contributes nothing.
      for (j = length; j < length + 8; ++j) scores[j] = -INFINITY;
      const __m256 vbest = _mm256_set1_ps(best);
      __m256 vtotal = _mm256_setzero_ps();
      for (j = 0; j < length; j += 8) {
        const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(&scores[j]), vbest));
        _mm256_storeu_ps(&scores[j], e);
        vtotal = _mm256_add_ps(vtotal, e);
      }
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, vtotal);
      float total = 0.f;
      for (float lane : lanes) total += lane;
      float* orow = out + ((s * heads + h) * t + r) * d;
      const float inverse = 1.f / total;
      if (d == 64) {
        weighted_sum<64>(scores.data(), vbase, ks2, length, inverse, orow);
      } else if (d == 128) {
        weighted_sum<128>(scores.data(), vbase, ks2, length, inverse, orow);
      } else {
        for (j = 0; j < length; ++j) axpy_half(scores[j] * inverse, vbase + j * ks2, orow, d);
      }
    }
  });
  return output;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("attend", &attend, "Attention over an fp16 KV cache"); }
