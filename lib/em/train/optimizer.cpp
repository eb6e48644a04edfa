#include "em/train/optimizer.hpp"

#include "em/core/error.hpp"

#include <ATen/Parallel.h>

#include <sys/mman.h>

#include <cmath>
#include <memory>
#include <set>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define EM_ADAMW_AVX2 1
#endif

namespace em::train {
namespace {

// The per-step constants of torch's AdamW, rounded to float as torch's CPU kernels round Python scalars for fp32 tensors.
struct Coeffs {
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float decay;           // 1 - lr * weight_decay
  float neg_step_size;   // -lr / (1 - beta1^t)
  float bc2_sqrt;        // sqrt(1 - beta2^t)
  float eps;
  float grad_scale;      // gradients are multiplied by this first (clip_grad_norm_'s coefficient; 1 = none)
};

// Element-wise, in torch's operation order: m = m*b1 + (1-b1)*g; v = v*b2 + (1-b2)*g*g; p *= decay;
// denom = sqrt(v)/bc2_sqrt + eps; p += (-step_size * m) / denom (addcdiv computes value * t1 / t2).
// No fused multiply-add anywhere, so this loop and the AVX2 one give identical bits: results do not depend on how
// parallel_for splits the work, i.e. on the thread count.
void adamw_scalar(float* p, const float* g, float* m, float* v, int64_t n, const Coeffs& c) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] * c.grad_scale;
    const float mi = m[i] * c.beta1 + c.one_minus_beta1 * gi;
    const float vi = v[i] * c.beta2 + c.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) / c.bc2_sqrt + c.eps;
    p[i] = p[i] * c.decay + c.neg_step_size * mi / denom;
  }
}

#ifdef EM_ADAMW_AVX2
// The same loop, 8 floats at a time. Written with intrinsics because GCC will not vectorise sqrtf while it may set errno
// (-fno-math-errno is a build flag, and the optimize attribute does not reach builtins).
__attribute__((target("avx2"))) void adamw_avx2(float* p, const float* g, float* m, float* v, int64_t n,
                                                const Coeffs& c) {
  const __m256 beta1 = _mm256_set1_ps(c.beta1), one_minus_beta1 = _mm256_set1_ps(c.one_minus_beta1);
  const __m256 beta2 = _mm256_set1_ps(c.beta2), one_minus_beta2 = _mm256_set1_ps(c.one_minus_beta2);
  const __m256 decay = _mm256_set1_ps(c.decay), neg_step_size = _mm256_set1_ps(c.neg_step_size);
  const __m256 bc2_sqrt = _mm256_set1_ps(c.bc2_sqrt), eps = _mm256_set1_ps(c.eps);
  const __m256 grad_scale = _mm256_set1_ps(c.grad_scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 gi = _mm256_mul_ps(_mm256_loadu_ps(g + i), grad_scale);
    const __m256 mi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(m + i), beta1), _mm256_mul_ps(one_minus_beta1, gi));
    const __m256 vi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(v + i), beta2),
                                    _mm256_mul_ps(_mm256_mul_ps(one_minus_beta2, gi), gi));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc2_sqrt), eps);
    const __m256 pi = _mm256_mul_ps(_mm256_loadu_ps(p + i), decay);
    _mm256_storeu_ps(p + i, _mm256_add_ps(pi, _mm256_div_ps(_mm256_mul_ps(neg_step_size, mi), denom)));
  }
  adamw_scalar(p + i, g + i, m + i, v + i, n - i, c);
}
#endif

void adamw_fused(float* p, const float* g, float* m, float* v, int64_t n, const Coeffs& c) {
#ifdef EM_ADAMW_AVX2
  static const bool has_avx2 = __builtin_cpu_supports("avx2");
  if (has_avx2) return adamw_avx2(p, g, m, v, n, c);
#endif
  adamw_scalar(p, g, m, v, n, c);
}

// The fused kernel walks raw memory, so param, grad and moments must cover the same elements in the same order:
// one dense block each (any permutation of dims, e.g. channels_last) with identical strides where a size exceeds 1.
bool can_fuse(const torch::Tensor& p, const torch::Tensor& g, const torch::Tensor& m, const torch::Tensor& v) {
  for (const auto* t : {&p, &g, &m, &v})
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat || t->layout() != torch::kStrided) return false;
  if (g.sizes() != p.sizes()) return false;
  // One flat loop is right when the four tensors lay their elements out alike. Strides of size-1 dimensions do not
  // address anything: a channels-last [O, I, 1, 1] conv weight and its contiguous gradient share one layout.
  for (const auto* t : {&p, &g, &m, &v}) {
    if (!t->is_non_overlapping_and_dense()) return false;
    for (int64_t d = 0; d < p.dim(); ++d)
      if (p.size(d) > 1 && t->stride(d) != p.stride(d)) return false;
  }
  return true;
}

// The moments' memory: one anonymous mapping for all of them, which the kernel hands out zero-filled (no memset) and,
// asked with MADV_HUGEPAGE, in 2 MiB pages. ResNet-50's 200 MB of AdamW state is then ~100 page faults at the first
// step instead of ~50,000 at start-up (about 0.3 s on a 2-vCPU VM, more under load); the values are the same zeros.
// Each moment keeps its param's strides (channels_last stays so); the tensors hold the mapping alive (a checkpoint
// writer may still hold state(false) after the optimizer is gone).
class MomentArena {
 public:
  // Bytes for a tensor shaped and strided like p, 64-byte aligned; 0 where p is not one dense block.
  static size_t bytes_for(const torch::Tensor& p) {
    if (!p.device().is_cpu() || !p.is_non_overlapping_and_dense()) return 0;
    return (static_cast<size_t>(p.numel()) * p.element_size() + 63) / 64 * 64;
  }
  explicit MomentArena(size_t bytes) : size_(std::max<size_t>(bytes, 1)) {
    void* m = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::bad_alloc();
    base_ = static_cast<char*>(m);
#ifdef MADV_HUGEPAGE
    ::madvise(base_, size_, MADV_HUGEPAGE);  // advice only: without transparent huge pages, 4 KiB pages as usual
#endif
  }
  ~MomentArena() { ::munmap(base_, size_); }
  MomentArena(const MomentArena&) = delete;
  MomentArena& operator=(const MomentArena&) = delete;
  // Zeros like p (its sizes, strides and dtype) at the next free offset.
  static torch::Tensor zeros_like(const std::shared_ptr<MomentArena>& arena, const torch::Tensor& p) {
    const size_t bytes = bytes_for(p);
    char* at = arena->base_ + arena->used_;
    arena->used_ += bytes;
    std::shared_ptr<MomentArena> keep = arena;
    return torch::from_blob(at, p.sizes(), p.strides(), [keep](void*) {}, p.options().requires_grad(false));
  }

 private:
  char* base_ = nullptr;
  size_t size_ = 0;
  size_t used_ = 0;
};

torch::Tensor int64_scalar(int64_t v) { return torch::tensor(v, torch::kInt64); }

int64_t read_int64_scalar(const torch::Tensor& t, const std::string& name) {
  if (t.numel() != 1 || t.is_floating_point() || t.is_complex())
    fail("optimizer state: '{}' must be one integer, got a {} tensor of shape {}", name, c10::toString(t.scalar_type()),
         c10::str(t.sizes()));
  return t.item<int64_t>();
}

}  // namespace

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions opts) : opts_(opts) {
  auto check = [](bool ok, const char* name, double value, const char* range) {
    if (!ok) fail("AdamW: {} = {} is out of range (expected {})", name, value, range);
  };
  check(opts.lr >= 0, "lr", opts.lr, ">= 0");
  check(opts.beta1 >= 0 && opts.beta1 < 1, "beta1", opts.beta1, "[0, 1)");
  check(opts.beta2 >= 0 && opts.beta2 < 1, "beta2", opts.beta2, "[0, 1)");
  check(opts.eps >= 0, "eps", opts.eps, ">= 0");
  check(opts.weight_decay >= 0, "weight_decay", opts.weight_decay, ">= 0");
  size_t arena_bytes = 0;
  for (const ParamGroup& group : groups)
    for (const torch::Tensor& p : group.params)
      if (p.defined()) arena_bytes += 2 * MomentArena::bytes_for(p);
  const auto arena = std::make_shared<MomentArena>(arena_bytes);
  std::set<std::string> seen;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    ParamGroup& group = groups[gi];
    if (group.names.size() != group.params.size())
      fail("AdamW: parameter group {} has {} names for {} parameters", gi, group.names.size(), group.params.size());
    const double wd = group.weight_decay.value_or(opts.weight_decay);
    check(wd >= 0, "weight_decay", wd, ">= 0");
    check(group.lr_scale >= 0, "lr_scale", group.lr_scale, ">= 0");
    for (size_t i = 0; i < group.params.size(); ++i) {
      const std::string& name = group.names[i];
      const torch::Tensor& p = group.params[i];
      if (name.empty()) fail("AdamW: parameter {} of group {} has an empty name", i, gi);
      if (!seen.insert(name).second) fail("AdamW: parameter '{}' is given twice", name);
      if (!p.defined() || !p.is_floating_point())
        fail("AdamW: parameter '{}' must be a defined floating-point tensor", name);
      Slot slot;
      slot.name = name;
      slot.param = p;
      // The param's strides (as zeros_like's MemoryFormat::Preserve), which the fused path relies on.
      if (MomentArena::bytes_for(p) > 0) {
        slot.exp_avg = MomentArena::zeros_like(arena, p);
        slot.exp_avg_sq = MomentArena::zeros_like(arena, p);
      } else {
        slot.exp_avg = torch::zeros_like(p, torch::MemoryFormat::Preserve);
        slot.exp_avg_sq = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      }
      slot.lr_scale = group.lr_scale;
      slot.weight_decay = wd;
      slots_.push_back(std::move(slot));
    }
  }
}

void AdamW::zero_grad() {
  for (Slot& slot : slots_) slot.param.mutable_grad() = torch::Tensor();
}

void AdamW::set_lr(double lr) {
  if (!(lr >= 0)) fail("AdamW: learning rate {} is out of range (expected >= 0)", lr);
  opts_.lr = lr;
}

void AdamW::step(double grad_scale) {
  torch::NoGradGuard no_grad;
  ++step_count_;
  for (Slot& slot : slots_) {
    const torch::Tensor& grad = slot.param.grad();
    if (!grad.defined()) continue;
    if (grad.is_sparse()) fail("AdamW: parameter '{}' has a sparse gradient, which AdamW does not support", slot.name);
    update(slot, grad, grad_scale);
  }
}

void AdamW::update(Slot& slot, const torch::Tensor& raw_grad, double grad_scale) {
  slot.step += 1;
  const double lr = opts_.lr * slot.lr_scale;
  const double bias_correction1 = 1.0 - std::pow(opts_.beta1, static_cast<double>(slot.step));
  const double bias_correction2 = 1.0 - std::pow(opts_.beta2, static_cast<double>(slot.step));
  const double step_size = lr / bias_correction1;
  const double bias_correction2_sqrt = std::sqrt(bias_correction2);
  torch::Tensor& p = slot.param;

  if (can_fuse(p, raw_grad, slot.exp_avg, slot.exp_avg_sq)) {
    const Coeffs c{static_cast<float>(opts_.beta1),
                   static_cast<float>(1.0 - opts_.beta1),
                   static_cast<float>(opts_.beta2),
                   static_cast<float>(1.0 - opts_.beta2),
                   static_cast<float>(1.0 - lr * slot.weight_decay),
                   static_cast<float>(-step_size),
                   static_cast<float>(bias_correction2_sqrt),
                   static_cast<float>(opts_.eps),
                   static_cast<float>(grad_scale)};  // as torch multiplies a float tensor by a scalar
    float* pp = p.data_ptr<float>();
    const float* gp = raw_grad.data_ptr<float>();
    float* mp = slot.exp_avg.data_ptr<float>();
    float* vp = slot.exp_avg_sq.data_ptr<float>();
    // 64K floats per task: big enough to amortise scheduling, small enough to spread a 2M-float conv over the threads.
    at::parallel_for(0, p.numel(), int64_t{1} << 16, [&](int64_t begin, int64_t end) {
      adamw_fused(pp + begin, gp + begin, mp + begin, vp + begin, end - begin, c);
    });
    // Writes through data_ptr bypass autograd's in-place bookkeeping; bump the version as an in-place op would.
    p.unsafeGetTensorImpl()->bump_version();
    slot.exp_avg.unsafeGetTensorImpl()->bump_version();
    slot.exp_avg_sq.unsafeGetTensorImpl()->bump_version();
    return;
  }

  // Any other dtype or layout: torch.optim.AdamW's single-tensor code, op by op.
  const torch::Tensor grad = grad_scale == 1.0 ? raw_grad : raw_grad * grad_scale;
  if (slot.weight_decay != 0) p.mul_(1.0 - lr * slot.weight_decay);
  slot.exp_avg.mul_(opts_.beta1).add_(grad, 1.0 - opts_.beta1);
  slot.exp_avg_sq.mul_(opts_.beta2).addcmul_(grad, grad, 1.0 - opts_.beta2);
  const torch::Tensor denom = (slot.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(opts_.eps);
  p.addcdiv_(slot.exp_avg, denom, -step_size);
}

tensor::TensorMap AdamW::state(bool copy) const {
  tensor::TensorMap out;
  out.emplace("step", int64_scalar(step_count_));
  // Contiguous: what a safetensors file stores. Copies are safe to keep while training goes on.
  auto snapshot = [copy](const torch::Tensor& t) {
    return copy ? t.clone(torch::MemoryFormat::Contiguous) : t.detach().contiguous();
  };
  for (const Slot& slot : slots_) {
    out.emplace("exp_avg." + slot.name, snapshot(slot.exp_avg));
    out.emplace("exp_avg_sq." + slot.name, snapshot(slot.exp_avg_sq));
    out.emplace("step." + slot.name, int64_scalar(slot.step));
  }
  return out;
}

void AdamW::load_state(const tensor::TensorMap& state) {
  // Check everything first so that a bad file leaves the optimizer untouched.
  std::vector<std::string> missing;
  std::set<std::string> expected{"step"};
  auto find = [&](const std::string& key) -> const torch::Tensor* {
    expected.insert(key);
    auto it = state.find(key);
    if (it == state.end() || !it->second.defined()) {
      missing.push_back(key);
      return nullptr;
    }
    return &it->second;
  };
  const torch::Tensor* global_step = find("step");
  struct Loaded {
    const torch::Tensor *exp_avg, *exp_avg_sq, *step;
  };
  std::vector<Loaded> loaded;
  for (const Slot& slot : slots_) {
    Loaded l{find("exp_avg." + slot.name), find("exp_avg_sq." + slot.name), find("step." + slot.name)};
    for (const torch::Tensor* t : {l.exp_avg, l.exp_avg_sq})
      if (t && t->sizes() != slot.param.sizes())
        fail("optimizer state: '{}' has shape {}, but parameter '{}' has shape {}",
             t == l.exp_avg ? "exp_avg." + slot.name : "exp_avg_sq." + slot.name, c10::str(t->sizes()),
             slot.name, c10::str(slot.param.sizes()));
    loaded.push_back(l);
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 5; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 5) list += fmt::format(" and {} more", missing.size() - 5);
    fail("optimizer state: {} tensor(s) missing: {} (was it saved for the same model and parameter groups?)",
         missing.size(), list);
  }
  for (const auto& [key, value] : state)
    if (!expected.count(key))
      fail("optimizer state: unknown tensor '{}' (no parameter of this model has that name)", key);

  const int64_t step_count = read_int64_scalar(*global_step, "step");
  std::vector<int64_t> steps;
  for (size_t i = 0; i < slots_.size(); ++i) steps.push_back(read_int64_scalar(*loaded[i].step, "step." + slots_[i].name));

  torch::NoGradGuard no_grad;
  step_count_ = step_count;
  for (size_t i = 0; i < slots_.size(); ++i) {
    slots_[i].exp_avg.copy_(*loaded[i].exp_avg);  // copy_ keeps our layout (channels_last moments stay so)
    slots_[i].exp_avg_sq.copy_(*loaded[i].exp_avg_sq);
    slots_[i].step = steps[i];
  }
}

torch::Tensor total_grad_norm(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> norms;
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().detach().norm(2));
  if (norms.empty()) return torch::zeros({});
  return norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2);
}

double clip_coefficient(const torch::Tensor& total_norm, double max_norm) {
  // The same tensor arithmetic as torch::nn::utils::clip_grad_norm_ (float32 unless a gradient is float64), so the
  // scaled gradients are its bits.
  return torch::clamp(max_norm / (total_norm + 1e-6), c10::nullopt, 1.0).item<double>();
}

}  // namespace em::train
