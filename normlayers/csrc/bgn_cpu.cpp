// Batch Group Normalization, train mode, on CPU: one operator call forward and one C++ autograd
// node backward, the framework cost of nn.BatchNorm2d's fused kernel (see normlayers/native.py).
//
// Sample n's group g is the contiguous run x[n, g*L : (g+1)*L] of the flattened (C, H, W) axis;
// segments (group_layout.py) split it further at channel borders. Forward: the runs are cut into
// work units of at most kUnit values (several samples' runs when a run is short, a piece of a run
// when it is long); each unit's mean and sum of squared deviations come from two passes over data
// in cache; units combine per group in double (Chan et al.'s pairwise update). The running
// statistics follow BN's conventions and are updated in place, as native_batch_norm does. One pass
// writes y = x * scale[s] + shift[s] per segment s. Backward: units give per-segment sums of dy
// and dy * (x - mean); one pass writes dx = a[s] * dy + b[s] * x + c[s]. With create_graph=True
// the backward differentiates the definition written in ATen operators, so second-order
// gradients (MAML) work.
//
// bgn_noop has the same signature, autograd node and allocations and computes nothing: it
// measures the framework floor (python -m normlayers.bench --floor).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/irange.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>
#include <vector>

namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kUnit = 4096;              // values per work unit (summed in the input precision)
constexpr int64_t kGrainElements = 1 << 15;  // smaller inputs run on one thread (no parallel region)
constexpr int64_t kUnroll = 4;               // independent vector accumulators: hide the add latency

// GCC/Clang vector extensions: 32-byte vectors, compiled to whatever SIMD the build flags allow.
typedef float VecF __attribute__((vector_size(32)));
typedef double VecD __attribute__((vector_size(32)));
template <typename T>
struct VecOf;
template <>
struct VecOf<float> {
  using type = VecF;
};
template <>
struct VecOf<double> {
  using type = VecD;
};
template <typename T>
using Vec = typename VecOf<T>::type;
template <typename T>
constexpr int64_t kWidth = sizeof(Vec<T>) / sizeof(T);

template <typename T>
inline Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Sum of a vector's lanes as a tree (log2(W) dependent adds instead of W).
template <typename T>
inline T lanes_total(Vec<T> v) {
  T lanes[kWidth<T>];
  std::memcpy(lanes, &v, sizeof(v));
  for (int64_t width = kWidth<T> / 2; width > 0; width /= 2)
    for (int64_t l = 0; l < width; ++l) lanes[l] += lanes[l + width];
  return lanes[0];
}

struct Layout {
  int64_t batch, channels, groups, features, group_len, seg_len, segments, per_channel, per_group, count;
  std::vector<int64_t> seg_channel, seg_group;  // segment -> channel, group (no divisions in the loops)
  int64_t rows() const { return batch * segments; }
};

Layout make_layout(const Tensor& x, int64_t groups) {
  TORCH_CHECK(x.dim() >= 2, "bgn_train: expected an (N, C, ...) input, got ", x.dim(), " dimensions");
  int64_t positions = 1;
  for (const auto d : c10::irange(2, x.dim())) positions *= x.size(d);
  const int64_t channels = x.size(1), features = channels * positions;
  TORCH_CHECK(groups > 0 && features > 0 && features % groups == 0, "bgn_train: num_groups=", groups,
              " does not divide C*H*W = ", features);
  const int64_t group_len = features / groups, seg_len = std::gcd(group_len, positions);
  const int64_t segments = features / seg_len;
  Layout L{x.size(0), channels, groups, features, group_len, seg_len, segments,
           segments / channels, segments / groups, x.size(0) * group_len, {}, {}};
  L.seg_channel.resize(segments);
  L.seg_group.resize(segments);
  for (int64_t s = 0, c = 0, g = 0, in_c = 0, in_g = 0; s < segments; ++s) {
    L.seg_channel[s] = c;
    L.seg_group[s] = g;
    if (++in_c == L.per_channel) in_c = 0, ++c;
    if (++in_g == L.per_group) in_g = 0, ++g;
  }
  return L;
}

// The runs x[n * stride + offset + k * piece ...] of `len` values, for n in a block of samples.
// Units tile (samples x runs of length run_len): short runs are stacked over samples, long runs
// are cut into pieces, so every unit holds up to about kUnit values.
struct Units {
  int64_t runs, run_len, pieces, piece, samples_per_unit, sample_blocks, batch;
  Units(int64_t runs_, int64_t run_len_, int64_t batch_) : runs(runs_), run_len(run_len_), batch(batch_) {
    pieces = (run_len + kUnit - 1) / kUnit;
    piece = (run_len + pieces - 1) / pieces;
    samples_per_unit = pieces > 1 ? 1 : std::max<int64_t>(1, std::min(batch, kUnit / run_len));
    sample_blocks = (batch + samples_per_unit - 1) / samples_per_unit;
  }
  int64_t count() const { return runs * sample_blocks * pieces; }
  int64_t per_run() const { return sample_blocks * pieces; }
  int64_t grain() const { return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, samples_per_unit * piece)); }
  // Calls f(u, run, n0, n1, v0, v1) for units [begin, end): samples [n0, n1) and values [v0, v1) of
  // the run. Units are numbered run-major, then sample block, then piece (one division per call).
  template <typename F>
  void walk(int64_t begin, int64_t end, F f) const {
    int64_t run = begin / per_run(), b = (begin % per_run()) / pieces, k = begin % pieces;
    for (int64_t u = begin; u < end; ++u) {
      const int64_t n0 = b * samples_per_unit, v0 = k * piece;
      f(u, run, n0, std::min(batch, n0 + samples_per_unit), v0, std::min(run_len, v0 + piece));
      if (++k == pieces) {
        k = 0;
        if (++b == sample_blocks) {
          b = 0;
          ++run;
        }
      }
    }
  }
};

// Two sums over a unit's values (float32 partial sums of at most kUnit terms, returned in double).
// terms(v, i, a1, a2) adds position i's two terms; it is called with Vec<T> and with T accumulators.
template <typename T, typename Terms>
void unit_sums(int64_t stride, int64_t n0, int64_t n1, int64_t len, Terms terms, double& s1, double& s2) {
  constexpr int64_t W = kWidth<T>;
  Vec<T> a1[kUnroll] = {}, a2[kUnroll] = {};
  T t1 = 0, t2 = 0;
  for (int64_t n = n0; n < n1; ++n) {
    const int64_t o = n * stride;
    int64_t i = 0;
    for (; i + kUnroll * W <= len; i += kUnroll * W) {
#pragma GCC unroll 4
      for (int64_t k = 0; k < kUnroll; ++k) terms(Vec<T>{}, o + i + k * W, a1[k], a2[k]);
    }
    for (; i + W <= len; i += W) terms(Vec<T>{}, o + i, a1[0], a2[0]);
    for (; i < len; ++i) terms(T{}, o + i, t1, t2);
  }
  s1 = t1 + lanes_total<T>((a1[0] + a1[1]) + (a1[2] + a1[3]));
  s2 = t2 + lanes_total<T>((a2[0] + a2[1]) + (a2[2] + a2[3]));
}

template <typename V, typename T>
inline V read(const T* p, int64_t i) {
  if constexpr (std::is_same_v<V, T>) {
    return p[i];
  } else {
    return load(p + i);
  }
}

template <typename T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.const_data_ptr<T>() : nullptr;
}

// out = a[s] * u + b[s] * v + c[s] on every (sample, segment) row; v may be null.
template <typename T>
void affine_rows(const Layout& L, const T* u, const T* v, const std::vector<T>& a, const std::vector<T>& b,
                 const std::vector<T>& c, T* out) {
  const int64_t len = L.seg_len, grain = std::max<int64_t>(1, kGrainElements / len);
  at::parallel_for(0, L.rows(), grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin, s = begin % L.segments; r < end; ++r, s = (s + 1 == L.segments ? 0 : s + 1)) {
      const int64_t o = r * len;
      const T as = a[s], cs = c[s];
      if (v == nullptr) {
        for (int64_t i = 0; i < len; ++i) out[o + i] = u[o + i] * as + cs;
      } else {
        const T bs = b[s];
        for (int64_t i = 0; i < len; ++i) out[o + i] = u[o + i] * as + v[o + i] * bs + cs;
      }
    }
  });
}

// Group means and biased variances (double) of x.
template <typename T>
void group_moments(const T* x, const Layout& L, std::vector<double>& mean, std::vector<double>& var) {
  const Units U(L.groups, L.group_len, L.batch);
  const double full = static_cast<double>(U.samples_per_unit * U.piece), inv_full = 1.0 / full;
  std::vector<double> unit_size(U.count()), unit_mean(U.count()), unit_m2(U.count());
  at::parallel_for(0, U.count(), U.grain(), [&](int64_t begin, int64_t end) {
    U.walk(begin, end, [&](int64_t u, int64_t g, int64_t n0, int64_t n1, int64_t v0, int64_t v1) {
      const T* p = x + g * L.group_len + v0;
      const double size = static_cast<double>((n1 - n0) * (v1 - v0));
      const double inv = size == full ? inv_full : 1.0 / size;  // divisions are costly at 16-value units
      double s1, s2;
      unit_sums<T>(L.features, n0, n1, v1 - v0, [&](auto z, int64_t i, auto& a1, auto&) {
        a1 += read<decltype(z)>(p, i);
      }, s1, s2);
      const T c = static_cast<T>(s1 * inv);  // then sums of deviations from c: no cancellation
      unit_sums<T>(L.features, n0, n1, v1 - v0, [&](auto z, int64_t i, auto& a1, auto& a2) {
        using V = decltype(z);
        const V d = read<V>(p, i) - c;
        a1 += d;
        a2 += d * d;
      }, s1, s2);
      unit_size[u] = size;
      unit_mean[u] = c + s1 * inv;
      unit_m2[u] = std::max(0.0, s2 - s1 * s1 * inv);
    });
  });
  // Per group, in double: the size-weighted mean of the unit means, then the within-unit sums of
  // squares plus each unit's squared offset from the group mean (the parallel-variance formula).
  mean.assign(L.groups, 0.0);
  var.assign(L.groups, 0.0);
  const int64_t per_group = U.per_run();
  const double inv_count = 1.0 / static_cast<double>(L.count);
  for (const auto g : c10::irange(L.groups)) {
    double m = 0, m2 = 0;
    for (int64_t u = g * per_group; u < (g + 1) * per_group; ++u) m += unit_size[u] * unit_mean[u];
    m *= inv_count;
    for (int64_t u = g * per_group; u < (g + 1) * per_group; ++u) {
      const double d = unit_mean[u] - m;
      m2 += unit_m2[u] + unit_size[u] * d * d;
    }
    mean[g] = m;
    var[g] = m2 * inv_count;
  }
}

// torch.lerp's formula (what the eager path's _foreach_lerp_ computes), in the buffer's precision.
template <typename R>
void lerp_into(R* running, const std::vector<double>& value, double weight, double scale) {
  const R w = static_cast<R>(weight);
  for (const auto g : c10::irange(value.size())) {
    const R end = static_cast<R>(value[g] * scale), start = running[g];
    running[g] = std::abs(w) < R(0.5) ? start + w * (end - start) : end - (end - start) * (R(1) - w);
  }
}

void update_running(const Tensor& running, const std::vector<double>& value, double weight, double scale) {
  if (!running.defined()) return;
  TORCH_CHECK(running.is_contiguous() && running.numel() == static_cast<int64_t>(value.size()),
              "bgn_train: running statistics must be contiguous with one entry per group");
  if (running.scalar_type() == at::kFloat) {
    lerp_into(running.data_ptr<float>(), value, weight, scale);
  } else {
    TORCH_CHECK(running.scalar_type() == at::kDouble, "bgn_train: running statistics must be float32 or float64");
    lerp_into(running.data_ptr<double>(), value, weight, scale);
  }
  torch::autograd::impl::bump_version(running);
}

// The buffers BN's conventions update; not autograd inputs (no gradient flows to them).
struct RunningStats {
  Tensor mean, var, batches_tracked;
  std::optional<double> momentum;
};

void update_running_stats(const RunningStats& running, const Layout& L, const std::vector<double>& mean,
                          const std::vector<double>& var) {
  if (!running.mean.defined() && !running.var.defined()) return;
  double factor = running.momentum.value_or(0.0);
  if (running.batches_tracked.defined()) {
    int64_t* tracked = running.batches_tracked.data_ptr<int64_t>();
    *tracked += 1;
    torch::autograd::impl::bump_version(running.batches_tracked);
    if (!running.momentum.has_value()) factor = 1.0 / static_cast<double>(*tracked);  // cumulative average, as BN
  }
  update_running(running.mean, mean, factor, 1.0);
  update_running(running.var, var, factor, static_cast<double>(L.count) / (L.count - 1));  // unbiased, as BN
}

template <typename T>
Tensor forward_impl(const Tensor& x, const Tensor& weight, const Tensor& bias, const Layout& L, double eps,
                    const RunningStats& running, Tensor& stats_out) {
  const T* xp = x.const_data_ptr<T>();
  std::vector<double> mean, var;
  group_moments(xp, L, mean, var);
  update_running_stats(running, L, mean, var);
  stats_out = at::empty({2, L.groups}, x.options().dtype(at::kDouble));  // mean, 1/std: what backward needs
  double* saved = stats_out.data_ptr<double>();
  for (const auto g : c10::irange(L.groups)) saved[g] = mean[g];
  for (const auto g : c10::irange(L.groups)) saved[L.groups + g] = 1.0 / std::sqrt(var[g] + eps);  // vectorizes
  const T *w = data_or_null<T>(weight), *b = data_or_null<T>(bias);
  std::vector<T> scale(L.segments), shift(L.segments);
  for (const auto s : c10::irange(L.segments)) {
    const int64_t c = L.seg_channel[s], g = L.seg_group[s];
    const double a = (w ? w[c] : 1.0) * saved[L.groups + g];
    scale[s] = static_cast<T>(a);
    shift[s] = static_cast<T>((b ? b[c] : 0.0) - mean[g] * a);
  }
  Tensor y = at::empty_like(x);
  affine_rows<T>(L, xp, nullptr, scale, scale, shift, y.data_ptr<T>());
  return y;
}

template <typename T>
void backward_impl(const Tensor& dy, const Tensor& x, const Tensor& weight, const Layout& L, const double* mean,
                   const double* rstd, Tensor& dx, Tensor& dweight, Tensor& dbias) {
  const T* dyp = dy.const_data_ptr<T>();
  const T* xp = x.const_data_ptr<T>();
  const T* w = data_or_null<T>(weight);
  std::vector<T> seg_mean(L.segments);
  for (const auto s : c10::irange(L.segments)) seg_mean[s] = static_cast<T>(mean[L.seg_group[s]]);
  const Units U(L.segments, L.seg_len, L.batch);
  std::vector<double> unit_dy(U.count()), unit_dyx(U.count());
  at::parallel_for(0, U.count(), U.grain(), [&](int64_t begin, int64_t end) {
    U.walk(begin, end, [&](int64_t u, int64_t s, int64_t n0, int64_t n1, int64_t v0, int64_t v1) {
      const int64_t o = s * L.seg_len + v0;
      const T c = seg_mean[s];
      unit_sums<T>(L.features, n0, n1, v1 - v0, [&](auto z, int64_t i, auto& a1, auto& a2) {
        using V = decltype(z);
        const V g = read<V>(dyp + o, i);
        a1 += g;
        a2 += g * (read<V>(xp + o, i) - c);
      }, unit_dy[u], unit_dyx[u]);
    });
  });
  // Per segment: sums of dy and dy * xhat over the batch; per group: the same weighted by gamma.
  const int64_t per_segment = U.per_run();
  std::vector<double> seg_dy(L.segments, 0.0), seg_dyxhat(L.segments, 0.0), k1(L.groups, 0.0), k2(L.groups, 0.0);
  std::vector<double> dw(L.channels, 0.0), db(L.channels, 0.0);
  for (const auto s : c10::irange(L.segments)) {
    const int64_t g = L.seg_group[s], c = L.seg_channel[s];
    for (int64_t u = s * per_segment; u < (s + 1) * per_segment; ++u) {
      seg_dy[s] += unit_dy[u];
      seg_dyxhat[s] += unit_dyx[u];
    }
    seg_dyxhat[s] *= rstd[g];
    const double ws = w ? w[c] : 1.0;
    k1[g] += ws * seg_dy[s];
    k2[g] += ws * seg_dyxhat[s];
    dw[c] += seg_dyxhat[s];
    db[c] += seg_dy[s];
  }
  T* dwp = dweight.defined() ? dweight.data_ptr<T>() : nullptr;
  T* dbp = dbias.defined() ? dbias.data_ptr<T>() : nullptr;
  for (const auto c : c10::irange(L.channels)) {
    if (dwp) dwp[c] = static_cast<T>(dw[c]);
    if (dbp) dbp[c] = static_cast<T>(db[c]);
  }
  if (!dx.defined()) return;
  // dx = rstd * (w * dy - m1 - xhat * m2), m1 and m2 the group means of w * dy and w * dy * xhat.
  std::vector<T> a(L.segments), b(L.segments), c(L.segments);
  const double inv_count = 1.0 / static_cast<double>(L.count);
  for (const auto s : c10::irange(L.segments)) {
    const int64_t g = L.seg_group[s];
    const double m1 = k1[g] * inv_count, m2 = k2[g] * inv_count, bs = -rstd[g] * rstd[g] * m2;
    a[s] = static_cast<T>((w ? w[L.seg_channel[s]] : 1.0) * rstd[g]);
    b[s] = static_cast<T>(bs);
    c[s] = static_cast<T>(-rstd[g] * m1 - bs * mean[g]);
  }
  affine_rows<T>(L, dyp, xp, a, b, c, dx.data_ptr<T>());
}

// The definition in ATen operators (differentiable any number of times): used for create_graph=True.
Tensor composite_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t groups, double eps) {
  const auto grouped = x.reshape({x.size(0), groups, -1});
  const auto [var, mean] = at::var_mean(grouped, {0, 2}, /*correction=*/0, /*keepdim=*/true);
  Tensor y = ((grouped - mean) * at::rsqrt(var + eps)).reshape(x.sizes());
  std::vector<int64_t> shape(x.dim(), 1);
  shape[1] = x.size(1);
  if (weight.defined()) y = y * weight.view(shape);
  if (bias.defined()) y = y + bias.view(shape);
  return y;
}

void check_inputs(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous(), "bgn_train: expected a contiguous CPU tensor");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "bgn_train: expected float32 or float64, got ", x.scalar_type());
  for (const Tensor* p : {&weight, &bias}) {
    TORCH_CHECK(!p->defined() || (p->scalar_type() == x.scalar_type() && p->is_contiguous() && p->numel() == x.size(1)),
                "bgn_train: weight and bias must be contiguous, of x's dtype, with C entries");
  }
}

template <bool kNoop>
struct BGNFunction : public torch::autograd::Function<BGNFunction<kNoop>> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const std::optional<Tensor>& weight_opt,
                        const std::optional<Tensor>& bias_opt, const RunningStats& running, int64_t groups, double eps) {
    const Tensor weight = weight_opt.value_or(Tensor()), bias = bias_opt.value_or(Tensor());
    check_inputs(x, weight, bias);
    const Layout L = make_layout(x, groups);
    Tensor y, stats;
    if constexpr (kNoop) {
      y = at::empty_like(x);
    } else {
      TORCH_CHECK(L.count > 1, "bgn_train: each group needs at least 2 values");
      y = AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bgn_train",
                                     [&] { return forward_impl<scalar_t>(x, weight, bias, L, eps, running, stats); });
    }
    ctx->save_for_backward({x, weight, bias});
    ctx->saved_data["stats"] = stats;
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["eps"] = eps;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &x = saved[0], &weight = saved[1], &bias = saved[2];
    const int64_t groups = ctx->saved_data["groups"].toInt();
    variable_list out(6);
    if (!kNoop && at::GradMode::is_enabled()) {  // create_graph=True: differentiate the definition
      std::vector<Tensor> inputs;
      std::vector<size_t> slots;
      for (const size_t i : {0, 1, 2}) {
        if (saved[i].defined() && ctx->needs_input_grad(i)) {
          inputs.push_back(saved[i]);
          slots.push_back(i);
        }
      }
      const Tensor y = composite_forward(x, weight, bias, groups, ctx->saved_data["eps"].toDouble());
      const auto found = torch::autograd::grad({y}, inputs, {grads[0]}, /*retain_graph=*/true,
                                               /*create_graph=*/true, /*allow_unused=*/true);
      for (const auto k : c10::irange(slots.size())) out[slots[k]] = found[k];
      return out;
    }
    Tensor dx = ctx->needs_input_grad(0) ? at::empty_like(x) : Tensor();
    Tensor dw = weight.defined() && ctx->needs_input_grad(1) ? at::empty_like(weight) : Tensor();
    Tensor db = bias.defined() && ctx->needs_input_grad(2) ? at::empty_like(bias) : Tensor();
    if constexpr (!kNoop) {
      const Tensor dy = grads[0].contiguous();
      const Layout L = make_layout(x, groups);
      const double* stats = ctx->saved_data["stats"].toTensor().const_data_ptr<double>();
      AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bgn_train_backward", [&] {
        backward_impl<scalar_t>(dy, x, weight, L, stats, stats + groups, dx, dw, db);
      });
    }
    out[0] = dx;
    out[1] = dw;
    out[2] = db;
    return out;
  }
};

template <bool kNoop>
Tensor bgn_train(const Tensor& x, const std::optional<Tensor>& weight, const std::optional<Tensor>& bias,
                 const std::optional<Tensor>& running_mean, const std::optional<Tensor>& running_var,
                 const std::optional<Tensor>& batches_tracked, int64_t groups, std::optional<double> momentum,
                 double eps) {
  const RunningStats running{running_mean.value_or(Tensor()), running_var.value_or(Tensor()),
                             batches_tracked.value_or(Tensor()), momentum};
  return BGNFunction<kNoop>::apply(x, weight, bias, running, groups, eps);
}

}  // namespace

#define BGN_ARGS                                                                                    \
  "(Tensor x, Tensor? weight, Tensor? bias, Tensor(a!)? running_mean, Tensor(b!)? running_var, " \
  "Tensor(c!)? num_batches_tracked, int groups, float? momentum, float eps) -> Tensor"

TORCH_LIBRARY(normlayers, m) {
  m.def("bgn_train" BGN_ARGS);
  m.def("bgn_noop" BGN_ARGS);
  m.impl("bgn_train", c10::DispatchKey::CompositeImplicitAutograd, TORCH_FN(bgn_train<false>));
  m.impl("bgn_noop", c10::DispatchKey::CompositeImplicitAutograd, TORCH_FN(bgn_train<true>));
}
