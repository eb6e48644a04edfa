// COCO box evaluation, a line-by-line port of pycocotools (cocoapi PythonAPI/pycocotools/cocoeval.py and coco.py,
// ppwwyyxx/cocoapi@ac87f50 = pycocotools 2.0.11 = cocodataset/cocoapi@8c9bcc3 for everything used here; box IoU from
// common/maskApi.c bbIou). References below as "cocoeval.py:LINE" (cocodataset/cocoapi@8c9bcc3 numbering).
//
// Shape of the port: pycocotools evaluates per (category, area range, image) with Python dicts; here ground truth and
// detections are grouped once per (category, image) into flat vectors, every group is matched for all area ranges
// and IoU thresholds in one pass (in parallel), and accumulate() sorts each category's detections once for all area
// ranges and maxDets (a stable sort of a subset keeps the subset's order in the full stable sort).
#include "em/metrics/coco.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>
#include <utility>

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/core/parallel.hpp"
#include "em/metrics/numeric.hpp"

namespace em::metrics {

// ============================================================================================ parameters

namespace {
// One 64-bit mask per (detection, area range) holds evaluateImg's per-threshold output: bit t = dtm[t] != 0 (matched
// to a ground truth whose id is not 0), bit 32 + t = dtIgnore[t].
constexpr int kIgnoredShift = 32;
constexpr std::size_t kMaxIouThresholds = 32;
}  // namespace

std::vector<double> numpy_linspace(double start, double stop, int num) {
  // numpy/core/function_base.py linspace (endpoint=True): y = arange(num) * step + start; y[-1] = stop.
  std::vector<double> y(static_cast<std::size_t>(std::max(num, 0)));
  if (num <= 0) return y;
  if (num == 1) {
    y[0] = start;
    return y;
  }
  const double step = (stop - start) / static_cast<double>(num - 1);
  for (int i = 0; i < num; ++i) y[static_cast<std::size_t>(i)] = static_cast<double>(i) * step + start;
  y.back() = stop;
  return y;
}

void CocoEvalParams::validate() const {
  if (iou_thresholds.empty()) usage_fail("coco eval: iou_thresholds is empty; the COCO default is 0.50:0.05:0.95");
  for (double t : iou_thresholds)
    if (!(t >= 0 && t <= 1)) usage_fail("coco eval: iou_thresholds: {} is outside [0, 1]", t);
  if (recall_thresholds.empty()) usage_fail("coco eval: recall_thresholds is empty; the COCO default is 0:0.01:1");
  for (std::size_t i = 0; i < recall_thresholds.size(); ++i) {
    if (!(recall_thresholds[i] >= 0 && recall_thresholds[i] <= 1))
      usage_fail("coco eval: recall_thresholds: {} is outside [0, 1]", recall_thresholds[i]);
    if (i > 0 && recall_thresholds[i] < recall_thresholds[i - 1])
      usage_fail("coco eval: recall_thresholds must be increasing ({} after {})", recall_thresholds[i],
                 recall_thresholds[i - 1]);
  }
  if (max_dets.size() != 3)
    usage_fail("coco eval: max_dets needs 3 values (COCOeval.summarize reads maxDets[0..2]), got {}", max_dets.size());
  for (std::size_t i = 0; i < max_dets.size(); ++i) {
    if (max_dets[i] < 1) usage_fail("coco eval: max_dets: {} must be >= 1", max_dets[i]);
    if (i > 0 && max_dets[i] <= max_dets[i - 1])
      usage_fail("coco eval: max_dets must be strictly increasing, got {} after {}", max_dets[i], max_dets[i - 1]);
  }
  if (area_ranges.empty()) usage_fail("coco eval: area_ranges is empty");
  for (std::size_t i = 0; i < area_ranges.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (area_ranges[i].label == area_ranges[j].label)
        usage_fail("coco eval: area_ranges: label \"{}\" is used twice", area_ranges[i].label);
  if (iou_thresholds.size() > kMaxIouThresholds)
    usage_fail("coco eval: at most {} iou_thresholds, got {}", kMaxIouThresholds, iou_thresholds.size());
  if (threads < 0) usage_fail("coco eval: threads: {} must be >= 0 (0 = all cores)", threads);
}

// ============================================================================================ evaluation

namespace {

struct GtBox {
  std::array<double, 4> bbox;
  double area;
  bool crowd;
  bool id_nonzero;  // dtm holds the gt id and accumulate() tests it for truth: a match to id 0 counts as none
};

struct DtBox {
  std::array<double, 4> bbox;
  double area;  // w*h (coco.py:338)
  double score;
};

// A non-empty (category, image) pair; ranges index the key-sorted gt / dt lists.
struct Group {
  std::uint32_t k = 0;
  std::size_t gt_begin = 0, gt_end = 0;
  std::size_t dt_begin = 0, dt_end = 0;
  std::size_t out_offset = 0;  // first slot of this group's kept detections in its category's buffers
};

struct CategoryBuffers {
  std::size_t n = 0;                 // detections kept (<= maxDets[-1] per image), images in id order
  std::vector<double> scores;        // dtScores, per image sorted by score
  std::vector<std::uint32_t> rank;   // position in its image's sorted list: kept for maxDet m iff rank < maxDets[m]
  std::vector<std::uint64_t> masks;  // [A][n]: matched / ignored bits per IoU threshold
  std::vector<std::size_t> npig;     // [A]: non-ignored ground truth over all images
};

// The pool of emkit's CPU work, without a progress line (an evaluation takes well under a second per million boxes).
ParallelOptions workers(int threads) {
  ParallelOptions options;
  options.threads = threads;
  return options;
}

// A (category, image) key and the item's position: sorting by both keeps file order within a group, as imgToAnns
// does (coco.py:97, and loadRes numbers results in file order).
using Keyed = std::pair<std::uint64_t, std::uint32_t>;

// What _prepare (cocoeval.py:84-119) builds, indexed once: ground truth and detections sorted by (category, image),
// the order of evalImgs (cocoeval.py:154-158), and the groups they form.
struct Prepared {
  std::size_t I = 0, K = 0;
  std::unordered_map<std::int64_t, std::uint32_t> img_index, cat_index;
  std::vector<std::uint64_t> gt_keys;  // sorted
  std::vector<GtBox> gt;               // in gt_keys' order
  std::vector<Keyed> dt_keys;          // sorted; .second indexes results.detections
  std::vector<Group> groups;
  std::vector<CategoryBuffers> cats;
  std::vector<std::size_t> group_npig;  // [groups][A]
  std::uint64_t key_of(std::uint32_t k, std::uint32_t i) const { return static_cast<std::uint64_t>(k) * I + i; }
};

// p.imgIds = sorted(unique(image ids)), p.catIds = sorted(unique(category ids)) (cocoeval.py:80-81, 134-136), and
// the category names (the last entry for an id wins, as in COCO.createIndex's dict).
void index_ids(const data::CocoAnnotations& gt, Prepared& p, CocoEvalResult& res) {
  std::vector<std::int64_t> img_ids;
  img_ids.reserve(gt.images.size());
  for (const auto& img : gt.images) img_ids.push_back(img.id);
  std::sort(img_ids.begin(), img_ids.end());
  img_ids.erase(std::unique(img_ids.begin(), img_ids.end()), img_ids.end());
  std::unordered_map<std::int64_t, std::string> cat_name;
  for (const auto& c : gt.categories) cat_name[c.id] = c.name;
  std::vector<std::int64_t> cat_ids;
  for (const auto& [id, name] : cat_name) cat_ids.push_back(id);
  std::sort(cat_ids.begin(), cat_ids.end());
  p.I = img_ids.size(), p.K = cat_ids.size();
  p.img_index.reserve(p.I * 2);
  for (std::size_t i = 0; i < p.I; ++i) p.img_index[img_ids[i]] = static_cast<std::uint32_t>(i);
  for (std::size_t k = 0; k < p.K; ++k) p.cat_index[cat_ids[k]] = static_cast<std::uint32_t>(k);
  res.category_ids = cat_ids;
  for (auto id : cat_ids) res.category_names.push_back(cat_name[id]);
  res.num_images = p.I;
}

// The ground truth of the evaluated images and categories (getAnnIds(imgIds=..., catIds=...) filters the rest).
void collect_ground_truth(const data::CocoAnnotations& gt, Prepared& p, CocoEvalResult& res) {
  std::vector<GtBox> boxes;
  std::vector<Keyed> keys;
  bool id_zero = false;
  for (const auto& img : gt.images) {
    auto ii = p.img_index.find(img.id);
    if (ii == p.img_index.end()) continue;
    for (const auto& box : img.boxes) {
      auto kk = p.cat_index.find(box.category_id);
      if (kk == p.cat_index.end()) continue;
      keys.emplace_back(p.key_of(kk->second, ii->second), static_cast<std::uint32_t>(boxes.size()));
      boxes.push_back(GtBox{box.bbox, box.area, box.iscrowd, box.id != 0});
      if (box.id == 0) id_zero = true;
    }
  }
  std::sort(keys.begin(), keys.end());
  p.gt_keys.reserve(keys.size());
  p.gt.reserve(keys.size());
  for (const auto& [key, at] : keys) {
    p.gt_keys.push_back(key);
    p.gt.push_back(boxes[at]);
  }
  res.num_ground_truth = p.gt.size();
  if (id_zero)
    log::warn("ground truth: an annotation has id 0; pycocotools (and so this evaluation) counts a detection matched "
              "to it as a false positive — number annotation ids from 1");
}

// The detections of the evaluated categories; one on an image the ground truth lacks is an error.
void collect_detections(const CocoResults& results, Prepared& p, CocoEvalResult& res) {
  p.dt_keys.reserve(results.detections.size());
  std::size_t unknown_category = 0;
  for (std::size_t d = 0; d < results.detections.size(); ++d) {
    const auto& det = results.detections[d];
    auto ii = p.img_index.find(det.image_id);
    // coco.py:324 asserts "Results do not correspond to current coco set".
    if (ii == p.img_index.end())
      fail("results[{}]: image_id {} is not an image of the ground truth; results must belong to its images", d,
           det.image_id);
    if (!std::isfinite(det.score)) fail("results[{}]: score {} is not a finite number", d, det.score);
    auto kk = p.cat_index.find(det.category_id);
    if (kk == p.cat_index.end()) {
      ++unknown_category;
      continue;
    }
    p.dt_keys.emplace_back(p.key_of(kk->second, ii->second), static_cast<std::uint32_t>(d));
  }
  std::sort(p.dt_keys.begin(), p.dt_keys.end());
  res.num_detections = p.dt_keys.size();
  if (unknown_category > 0)
    log::warn("results: {} of {} detections have a category_id the ground truth does not define; ignored, as "
              "pycocotools does",
              unknown_category, results.detections.size());
}

// The non-empty (category, image) groups and each category's output slots.
void form_groups(Prepared& p, std::size_t max_det_last, std::size_t A) {
  p.cats.assign(p.K, CategoryBuffers{});
  std::size_t g = 0, d = 0;
  const std::size_t G = p.gt_keys.size(), D = p.dt_keys.size();
  while (g < G || d < D) {
    const std::uint64_t key = std::min(g < G ? p.gt_keys[g] : UINT64_MAX, d < D ? p.dt_keys[d].first : UINT64_MAX);
    Group grp;
    grp.k = static_cast<std::uint32_t>(key / (p.I ? p.I : 1));
    grp.gt_begin = g;
    while (g < G && p.gt_keys[g] == key) ++g;
    grp.gt_end = g;
    grp.dt_begin = d;
    while (d < D && p.dt_keys[d].first == key) ++d;
    grp.dt_end = d;
    auto& cb = p.cats[grp.k];
    grp.out_offset = cb.n;
    cb.n += std::min(grp.dt_end - grp.dt_begin, max_det_last);
    p.groups.push_back(grp);
  }
  for (auto& cb : p.cats) {
    cb.scores.resize(cb.n);
    cb.rank.resize(cb.n);
    cb.masks.assign(A * cb.n, 0);
    cb.npig.assign(A, 0);
  }
  p.group_npig.assign(p.groups.size() * A, 0);
}

// ---- evaluate(): computeIoU + evaluateImg for every area range (cocoeval.py:163-190, 235-313) ----

// One worker's buffers, reused from group to group.
struct Scratch {
  std::vector<DtBox> dt;
  std::vector<double> ious, ious_sorted;
  std::vector<std::uint32_t> order, gtind;
  std::vector<std::uint8_t> gt_ignore, sorted_ignore, sorted_crowd, sorted_id_nonzero, gtm, out_of_range;
};

// The group's detections sorted by score, highest first, stable (np.argsort(-scores, kind='mergesort')), cut at
// maxDets[-1], into s.dt; their scores and ranks into the category's slots. A stable sort's result is unique: equal
// to sorting by (score descending, file position).
void sort_detections(const CocoResults& results, const Prepared& p, const Group& grp, std::size_t max_det_last,
                     Scratch& s, CategoryBuffers& cb) {
  const std::size_t d_all = grp.dt_end - grp.dt_begin;
  s.order.resize(d_all);
  std::iota(s.order.begin(), s.order.end(), 0u);
  auto score_of = [&](std::uint32_t j) { return results.detections[p.dt_keys[grp.dt_begin + j].second].score; };
  std::sort(s.order.begin(), s.order.end(), [&](std::uint32_t x, std::uint32_t y) {
    const double sx = score_of(x), sy = score_of(y);
    return sx > sy || (sx == sy && x < y);
  });
  const std::size_t D = std::min(d_all, max_det_last);
  s.dt.resize(D);
  for (std::size_t j = 0; j < D; ++j) {
    const auto& det = results.detections[p.dt_keys[grp.dt_begin + s.order[j]].second];
    s.dt[j] = DtBox{det.bbox, det.bbox[2] * det.bbox[3], det.score};
    cb.scores[grp.out_offset + j] = det.score;
    cb.rank[grp.out_offset + j] = static_cast<std::uint32_t>(j);
  }
}

// maskUtils.iou(d, g, iscrowd) = maskApi.c bbIou, the same operations in the same order; [] when either is empty.
void box_ious(const std::vector<DtBox>& dt, const GtBox* gt, std::size_t G, std::vector<double>& ious) {
  const std::size_t D = dt.size();
  ious.assign(D * G, 0.0);
  for (std::size_t gg = 0; gg < G; ++gg) {
    const auto& G4 = gt[gg].bbox;
    const double ga = G4[2] * G4[3];
    for (std::size_t dd = 0; dd < D; ++dd) {
      const auto& D4 = dt[dd].bbox;
      const double da = D4[2] * D4[3];
      const double w = std::fmin(D4[2] + D4[0], G4[2] + G4[0]) - std::fmax(D4[0], G4[0]);
      if (w <= 0) continue;
      const double h = std::fmin(D4[3] + D4[1], G4[3] + G4[1]) - std::fmax(D4[1], G4[1]);
      if (h <= 0) continue;
      const double inter = w * h;
      const double u = gt[gg].crowd ? da : da + ga - inter;
      ious[dd * G + gg] = inter / u;
    }
  }
}

// evaluateImg's set-up for one area range: g['_ignore'] (crowd, or area outside the range; cocoeval.py:250-254),
// the gt sorted ignore last, stable (257-258), the IoUs in that order, and the detections outside the range.
// Returns the non-ignored ground truth count.
std::size_t order_for_area(const CocoAreaRange& range, const GtBox* gt, std::size_t G, Scratch& s) {
  const std::size_t D = s.dt.size();
  s.gt_ignore.resize(G);
  std::size_t npig = 0;
  for (std::size_t j = 0; j < G; ++j) {
    s.gt_ignore[j] = gt[j].crowd || gt[j].area < range.min_area || gt[j].area > range.max_area;
    if (!s.gt_ignore[j]) ++npig;
  }
  s.gtind.clear();
  for (std::size_t j = 0; j < G; ++j)
    if (!s.gt_ignore[j]) s.gtind.push_back(static_cast<std::uint32_t>(j));
  for (std::size_t j = 0; j < G; ++j)
    if (s.gt_ignore[j]) s.gtind.push_back(static_cast<std::uint32_t>(j));
  s.sorted_ignore.resize(G);
  s.sorted_crowd.resize(G);
  s.sorted_id_nonzero.resize(G);
  for (std::size_t j = 0; j < G; ++j) {
    s.sorted_ignore[j] = s.gt_ignore[s.gtind[j]];
    s.sorted_crowd[j] = gt[s.gtind[j]].crowd;
    s.sorted_id_nonzero[j] = gt[s.gtind[j]].id_nonzero;
  }
  s.ious_sorted.resize(D * G);
  for (std::size_t dd = 0; dd < D; ++dd)
    for (std::size_t j = 0; j < G; ++j) s.ious_sorted[dd * G + j] = s.ious[dd * G + s.gtind[j]];
  // Unmatched detections outside the area range are ignored (cocoeval.py:298-299).
  s.out_of_range.resize(D);
  for (std::size_t dd = 0; dd < D; ++dd)
    s.out_of_range[dd] = s.dt[dd].area < range.min_area || s.dt[dd].area > range.max_area;
  return npig;
}

// Greedy matching at every IoU threshold (cocoeval.py:274-296, branch for branch), into the detections' masks.
void greedy_match(const std::vector<double>& iou_thrs, std::size_t G, Scratch& s, std::uint64_t* masks) {
  const std::size_t D = s.dt.size();
  for (std::size_t t = 0; t < iou_thrs.size(); ++t) {
    s.gtm.assign(G, 0);
    for (std::size_t dd = 0; dd < D; ++dd) {
      double iou = std::min(iou_thrs[t], 1 - 1e-10);
      std::ptrdiff_t m = -1;
      const double* row = s.ious_sorted.data() + dd * G;
      for (std::size_t j = 0; j < G; ++j) {
        // if this gt already matched, and not a crowd, continue
        if (s.gtm[j] && !s.sorted_crowd[j]) continue;
        // if dt matched to reg gt, and on ignore gt, stop
        if (m > -1 && !s.sorted_ignore[static_cast<std::size_t>(m)] && s.sorted_ignore[j]) break;
        // continue to next gt unless better match made
        if (row[j] < iou) continue;
        iou = row[j];
        m = static_cast<std::ptrdiff_t>(j);
      }
      bool matched_nonzero = false, ignored = false;
      if (m != -1) {
        const auto um = static_cast<std::size_t>(m);
        ignored = s.sorted_ignore[um];            // dtIg[tind,dind] = gtIg[m]
        matched_nonzero = s.sorted_id_nonzero[um];  // dtm = gt id
        s.gtm[um] = 1;                            // gtm = d['id'] >= 1
      }
      if (!matched_nonzero && s.out_of_range[dd]) ignored = true;
      if (matched_nonzero) masks[dd] |= std::uint64_t{1} << t;
      if (ignored) masks[dd] |= std::uint64_t{1} << (kIgnoredShift + t);
    }
  }
}

// Every group matched for all area ranges and IoU thresholds, in parallel; then each category's npig per range.
void evaluate_images(const CocoResults& results, const CocoEvalParams& params, Prepared& p) {
  const std::size_t A = params.area_ranges.size();
  const std::size_t max_det_last = static_cast<std::size_t>(params.max_dets.back());
  std::vector<Scratch> scratch(parallel_workers(p.groups.size(), params.threads));
  parallel_for(p.groups.size(), workers(params.threads), [&](std::size_t gi, std::size_t worker) {
    Scratch& s = scratch[worker];
    const Group& grp = p.groups[gi];
    auto& cb = p.cats[grp.k];  // groups of one category write disjoint slots
    sort_detections(results, p, grp, max_det_last, s, cb);
    const GtBox* gt = p.gt.data() + grp.gt_begin;
    const std::size_t G = grp.gt_end - grp.gt_begin;
    box_ious(s.dt, gt, G, s.ious);
    for (std::size_t a = 0; a < A; ++a) {
      p.group_npig[gi * A + a] = order_for_area(params.area_ranges[a], gt, G, s);
      greedy_match(params.iou_thresholds, G, s, cb.masks.data() + a * cb.n + grp.out_offset);
    }
  });
  for (std::size_t gi = 0; gi < p.groups.size(); ++gi)
    for (std::size_t a = 0; a < A; ++a) p.cats[p.groups[gi].k].npig[a] += p.group_npig[gi * A + a];
}

// ---- accumulate() (cocoeval.py:315-418) ----

// All images' kept detections of a category, in image-id order, sorted by score with a stable sort
// (cocoeval.py:362-366). Sorted once per category; each (area, maxDet) walks that order and skips the detections
// past maxDet in their image (e['dtScores'][0:maxDet]): a stable sort of a subset keeps the full sort's order.
std::vector<std::vector<std::uint32_t>> sort_by_score(const std::vector<CategoryBuffers>& cats, int threads) {
  std::vector<std::vector<std::uint32_t>> cat_order(cats.size());
  parallel_for(cats.size(), workers(threads), [&](std::size_t k, std::size_t) {
    auto& order = cat_order[k];
    const auto& sc = cats[k].scores;
    order.resize(cats[k].n);
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](std::uint32_t x, std::uint32_t y) {
      return sc[x] > sc[y] || (sc[x] == sc[y] && x < y);
    });
  });
  return cat_order;
}

// A true positive's recall and precision.
struct Point {
  double rc, pr;
};

// pycocotools computes rc and pr at every detection, makes pr monotone from the right and reads it at
// searchsorted(rc, recThrs, 'left'). The same numbers come from the true positives alone: rc only grows at a true
// positive, so searchsorted lands on one (or on index 0 for a threshold of 0, where the answer is the overall
// maximum); and after a true positive, pr only falls (same tp, more fp) until the next, so the suffix maximum is a
// maximum over true positives. rc and pr are computed with pycocotools' operations: tp / npig and
// tp / (fp + tp + eps) in float64. Fills tps[t] for one maxDet; returns how many detections it kept.
std::uint64_t true_positives(const std::vector<std::uint64_t>& mask, const std::vector<std::uint32_t>& rank,
                             std::uint32_t max_det, std::size_t T, double npig, std::vector<std::vector<Point>>& tps,
                             std::vector<std::uint64_t>& tp) {
  const double eps = std::nextafter(1.0, 2.0) - 1.0;  // np.spacing(1)
  const std::uint64_t t_bits = T == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << T) - 1;
  for (auto& v : tps) v.clear();
  std::fill(tp.begin(), tp.end(), 0);
  std::vector<std::uint64_t> ign(T, 0);
  std::uint64_t seen = 0, ign_all = 0;
  for (std::size_t j = 0; j < mask.size(); ++j) {
    if (rank[j] >= max_det) continue;
    ++seen;
    const std::uint64_t ignored = (mask[j] >> kIgnoredShift) & t_bits;
    if (ignored == t_bits) {  // ignored at every threshold (outside the area range, or on a crowd)
      ++ign_all;
      continue;
    }
    for (std::uint64_t b = ignored; b; b &= b - 1) ++ign[static_cast<std::size_t>(__builtin_ctzll(b))];
    for (std::uint64_t b = mask[j] & t_bits & ~ignored; b; b &= b - 1) {  // tps = dtm & ~dtIg
      const auto t = static_cast<std::size_t>(__builtin_ctzll(b));
      const double tpv = static_cast<double>(++tp[t]);
      const double fpv = static_cast<double>(seen - tp[t] - ign_all - ign[t]);
      tps[t].push_back({tpv / npig, tpv / (fpv + tpv + eps)});
    }
  }
  return seen;
}

// eval["precision"][:, :, k, a, m] from the true positives: monotone from the right (cocoeval.py:398-400), read at
// np.searchsorted(rc, recThrs, side='left'); past the end the rest stays 0 (the try/except, 403-408).
void precision_at_recalls(std::vector<Point>& pts, const std::vector<double>& rec_thrs, std::size_t t,
                          std::size_t k, std::size_t a, std::size_t m, CocoEvalResult& res) {
  for (std::size_t i = pts.size(); i-- > 1;)
    if (pts[i].pr > pts[i - 1].pr) pts[i - 1].pr = pts[i].pr;
  std::size_t pi = 0;
  for (std::size_t r = 0; r < rec_thrs.size(); ++r) {
    while (pi < pts.size() && pts[pi].rc < rec_thrs[r]) ++pi;
    res.precision[(((t * res.R + r) * res.K + k) * res.A + a) * res.M + m] = pi < pts.size() ? pts[pi].pr : 0.0;
  }
}

// Precision and recall of category k in area range a, for every maxDet and IoU threshold.
void accumulate_one(const CategoryBuffers& cb, const std::vector<std::uint32_t>& order, std::size_t k, std::size_t a,
                    const CocoEvalParams& params, CocoEvalResult& res) {
  const std::size_t npig = cb.npig[a];
  if (npig == 0) return;  // no (non-ignored) ground truth: precision and recall stay -1 (cocoeval.py:360, 373)
  const double npig_d = static_cast<double>(npig);
  const std::size_t T = res.T, K = res.K, A = res.A, M = res.M;
  std::vector<std::uint64_t> mask(cb.n);
  std::vector<std::uint32_t> rank(cb.n);
  for (std::size_t j = 0; j < cb.n; ++j) {
    mask[j] = cb.masks[a * cb.n + order[j]];
    rank[j] = cb.rank[order[j]];
  }
  std::vector<std::vector<Point>> tps(T);
  std::vector<std::uint64_t> tp(T);
  for (std::size_t m = 0; m < M; ++m) {
    const auto max_det = static_cast<std::uint32_t>(params.max_dets[m]);
    const std::uint64_t seen = true_positives(mask, rank, max_det, T, npig_d, tps, tp);
    for (std::size_t t = 0; t < T; ++t) {
      res.recall[((t * K + k) * A + a) * M + m] = seen ? static_cast<double>(tp[t]) / npig_d : 0.0;
      precision_at_recalls(tps[t], params.recall_thresholds, t, k, a, m, res);
    }
  }
}

void accumulate(const Prepared& p, const CocoEvalParams& params, CocoEvalResult& res) {
  const std::vector<std::vector<std::uint32_t>> cat_order = sort_by_score(p.cats, params.threads);
  const std::size_t A = res.A;
  parallel_for(res.K * A, workers(params.threads), [&](std::size_t task, std::size_t) {
    const std::size_t k = task / A, a = task % A;
    accumulate_one(p.cats[k], cat_order[k], k, a, params, res);
  });
}

// ---- summarize() (cocoeval.py:422-471) ----

// np.mean(s[s > -1]) or -1 when nothing is left (cocoeval.py:452-455), numpy's summation to the last bit.
double mean_of_valid(const std::vector<double>& values) {
  if (values.empty()) return -1;
  return numpy_sum(values) / static_cast<double>(values.size());
}

// One _summarize(ap, iouThr, areaRng, maxDets) over all categories (k_only < 0) or one category (per-class AP).
double summarize_one(const CocoEvalResult& res, const CocoEvalParams& params, bool ap, const double* iou_thr,
                     const std::string& area, int max_dets, std::ptrdiff_t k_only) {
  std::ptrdiff_t a = -1, m = -1;
  for (std::size_t j = 0; j < res.A; ++j)
    if (params.area_ranges[j].label == area) a = static_cast<std::ptrdiff_t>(j);
  for (std::size_t j = 0; j < res.M; ++j)
    if (params.max_dets[j] == max_dets) m = static_cast<std::ptrdiff_t>(j);
  if (a < 0 || m < 0) return -1.0;
  const auto ua = static_cast<std::size_t>(a), um = static_cast<std::size_t>(m);
  const std::size_t k0 = k_only < 0 ? 0 : static_cast<std::size_t>(k_only);
  const std::size_t k1 = k_only < 0 ? res.K : k0 + 1;
  std::vector<double> s;
  for (std::size_t t = 0; t < res.T; ++t) {
    if (iou_thr != nullptr && params.iou_thresholds[t] != *iou_thr) continue;  // np.where(iouThr == p.iouThrs)
    for (std::size_t r = 0; r < (ap ? res.R : 1); ++r)
      for (std::size_t k = k0; k < k1; ++k) {
        const double v = ap ? res.precision_at(t, r, k, ua, um) : res.recall_at(t, k, ua, um);
        if (v > -1) s.push_back(v);
      }
  }
  return mean_of_valid(s);
}

void summarize(const CocoEvalParams& params, CocoEvalResult& res) {
  const auto& md = params.max_dets;
  const double i50 = 0.5, i75 = 0.75;
  struct Line {
    bool ap;
    const double* iou;
    const char* area;
    int max_dets;
  };
  const Line lines[12] = {{true, nullptr, "all", md[2]},     {true, &i50, "all", md[2]},
                          {true, &i75, "all", md[2]},        {true, nullptr, "small", md[2]},
                          {true, nullptr, "medium", md[2]},  {true, nullptr, "large", md[2]},
                          {false, nullptr, "all", md[0]},    {false, nullptr, "all", md[1]},
                          {false, nullptr, "all", md[2]},    {false, nullptr, "small", md[2]},
                          {false, nullptr, "medium", md[2]}, {false, nullptr, "large", md[2]}};
  for (std::size_t i = 0; i < 12; ++i)
    res.stats[i] = summarize_one(res, params, lines[i].ap, lines[i].iou, lines[i].area, lines[i].max_dets, -1);
  for (std::size_t k = 0; k < res.K; ++k) {
    const auto kk = static_cast<std::ptrdiff_t>(k);
    res.ap_per_category.push_back(summarize_one(res, params, true, nullptr, "all", md[2], kk));
    res.ap50_per_category.push_back(summarize_one(res, params, true, &i50, "all", md[2], kk));
  }
}

}  // namespace

CocoEvalResult coco_evaluate(const data::CocoAnnotations& gt, const CocoResults& results,
                             const CocoEvalParams& params) {
  params.validate();
  CocoEvalResult res;
  Prepared p;
  index_ids(gt, p, res);
  res.T = params.iou_thresholds.size(), res.R = params.recall_thresholds.size(), res.K = p.K;
  res.A = params.area_ranges.size(), res.M = params.max_dets.size();
  res.precision.assign(res.T * res.R * res.K * res.A * res.M, -1.0);  // cocoeval.py:334
  res.recall.assign(res.T * res.K * res.A * res.M, -1.0);
  collect_ground_truth(gt, p, res);
  collect_detections(results, p, res);
  form_groups(p, static_cast<std::size_t>(params.max_dets.back()), res.A);
  evaluate_images(results, params, p);
  accumulate(p, params, res);
  summarize(params, res);
  return res;
}

// ============================================================================================ output

io::Json to_json(const CocoEvalResult& result, const std::vector<std::string>& category_names) {
  const auto& names = category_names.empty() ? result.category_names : category_names;
  if (names.size() != result.category_ids.size())
    fail("coco eval: {} category names given for {} categories", names.size(), result.category_ids.size());
  io::Json out = io::Json::object();
  for (std::size_t i = 0; i < kCocoStatNames.size(); ++i) out[kCocoStatNames[i]] = result.stats[i];
  io::Json per_class = io::Json::object();
  for (std::size_t k = 0; k < names.size(); ++k) {
    std::string name = names[k];
    if (per_class.contains(name)) name = fmt::format("{} (id {})", name, result.category_ids[k]);
    per_class[name] = io::Json{{"AP", result.ap_per_category[k]}, {"AP50", result.ap50_per_category[k]}};
  }
  out["per_class"] = std::move(per_class);
  return out;
}

std::string format_coco_summary(const CocoEvalResult& result, const CocoEvalParams& params) {
  // cocoeval.py:429-456: ' {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}'
  struct Line {
    bool ap;
    const char* iou;
    const char* area;
    int max_det;
  };
  const auto& md = params.max_dets;
  const std::string all_iou = fmt::format("{:0.2f}:{:0.2f}", params.iou_thresholds.front(),
                                          params.iou_thresholds.back());
  const Line lines[12] = {{true, nullptr, "all", md[2]},     {true, "0.50", "all", md[2]},
                          {true, "0.75", "all", md[2]},      {true, nullptr, "small", md[2]},
                          {true, nullptr, "medium", md[2]},  {true, nullptr, "large", md[2]},
                          {false, nullptr, "all", md[0]},    {false, nullptr, "all", md[1]},
                          {false, nullptr, "all", md[2]},    {false, nullptr, "small", md[2]},
                          {false, nullptr, "medium", md[2]}, {false, nullptr, "large", md[2]}};
  std::string out;
  for (std::size_t i = 0; i < 12; ++i) {
    const Line& l = lines[i];
    out += fmt::format(" {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}\n",
                       l.ap ? "Average Precision" : "Average Recall", l.ap ? "(AP)" : "(AR)",
                       l.iou ? std::string(l.iou) : all_iou, l.area, l.max_det, result.stats[i]);
  }
  return out;
}

io::Json evaluate_coco_files(const std::string& gt_path, const std::string& results_path, int threads) {
  data::CocoAnnotations gt = data::read_coco_ground_truth(gt_path);
  CocoResults res = load_coco_results(results_path);
  CocoEvalParams params;
  params.threads = threads;
  CocoEvalResult result = coco_evaluate(gt, res, params);
  log::info("COCO box evaluation: {} images, {} ground-truth boxes, {} detections, {} categories", result.num_images,
            result.num_ground_truth, result.num_detections, result.K);
  return to_json(result);
}

}  // namespace em::metrics
