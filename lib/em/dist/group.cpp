#include "em/dist/group.hpp"

// ProcessGroupGloo.hpp declares its class only under USE_C10D_GLOO; Debian's libtorch_cpu (and PyTorch's wheels) are
// built with Gloo and export it.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef EM_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "em/core/error.hpp"
#include "em/core/log.hpp"
#include "em/core/plural.hpp"

namespace em::dist {
namespace {

using Clock = std::chrono::steady_clock;

std::string key(const std::string& name, int rank) { return fmt::format("{}/{}", name, rank); }

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }
std::string string_of(const std::vector<uint8_t>& v) { return {v.begin(), v.end()}; }

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

std::string hostname() {
  char name[256] = {0};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "?";
  return name;
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

// One line a user can act on, for what TCPStore threw while joining.
[[noreturn]] void rendezvous_failed(const LaunchEnv& env, const std::string& what, std::chrono::milliseconds timeout) {
  const std::string where = fmt::format("{}:{}", env.master_addr, env.master_port);
  if (what.find("ddress already in use") != std::string::npos)
    fail("rendezvous: MASTER_PORT {} is already in use on {} (rank 0 hosts the store there): pick another port or "
         "stop the process holding it",
         env.master_port, env.master_addr);
  if (what.find("cannot be retrieved") != std::string::npos || what.find("gai error") != std::string::npos)
    fail("rendezvous: MASTER_ADDR '{}' does not resolve to an address: check MASTER_ADDR", env.master_addr);
  if (what.find("clients joined") != std::string::npos || what.find("waiting for clients") != std::string::npos)
    fail("rendezvous: only some of the {} processes joined at {} within {} s ({}): start every rank with the same "
         "MASTER_ADDR, MASTER_PORT and WORLD_SIZE",
         env.world_size, where, timeout.count() / 1000, first_line(what));
  if (what.find("timed out") != std::string::npos || what.find("connect") != std::string::npos)
    fail("rendezvous: could not reach rank 0's store at {} within {} s: check MASTER_ADDR/MASTER_PORT and that rank 0 "
         "is running ({})",
         where, timeout.count() / 1000, first_line(what));
  fail("rendezvous at {} failed: {}", where, first_line(what));
}

c10::intrusive_ptr<c10d::TCPStore> connect_store(const LaunchEnv& env, bool server, bool wait_workers,
                                                 std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<std::uint16_t>(env.master_port);
  opts.isServer = server;
  // Every rank that counts itself in names the world size (TCPStore's clients only count when they know it).
  opts.numWorkers = wait_workers ? c10::optional<std::size_t>(static_cast<std::size_t>(env.world_size)) : c10::nullopt;
  opts.waitWorkers = wait_workers;
  opts.timeout = timeout;
  try {
    return c10::make_intrusive<c10d::TCPStore>(env.master_addr, opts);
  } catch (const c10::Error& e) {
    rendezvous_failed(env, e.what_without_backtrace(), timeout);
  } catch (const std::exception& e) {
    rendezvous_failed(env, e.what(), timeout);
  }
}

// "WORLD_SIZE pid host" of every rank, published once; used to check agreement and to name lost ranks.
struct RankInfo {
  int world_size = 0;
  long pid = 0;
  std::string host;
};

RankInfo parse_rank_info(const std::string& text) {
  RankInfo info;
  char host[256] = {0};
  if (std::sscanf(text.c_str(), "%d %ld %255s", &info.world_size, &info.pid, host) >= 2) info.host = host;
  return info;
}

}  // namespace

// The backend, over either c10d class (1.13's ProcessGroup and 2.x's Backend have the same collective signatures).
class Comm {
 public:
  virtual ~Comm() = default;
  virtual c10::intrusive_ptr<c10d::Work> all_reduce(std::vector<torch::Tensor>& t) = 0;
  virtual c10::intrusive_ptr<c10d::Work> broadcast(std::vector<torch::Tensor>& t, int root) = 0;
  virtual c10::intrusive_ptr<c10d::Work> all_gather(std::vector<std::vector<torch::Tensor>>& out,
                                                    std::vector<torch::Tensor>& in) = 0;
  virtual c10::intrusive_ptr<c10d::Work> barrier() = 0;

  c10::intrusive_ptr<c10d::Store> store;       // the rendezvous, read to explain failures
  c10::intrusive_ptr<c10d::Store> beat_store;  // the heartbeat thread's own connection
  std::vector<RankInfo> ranks;
  std::thread heartbeat;
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
};

namespace {

template <typename Backend>
class BackendComm : public Comm {
 public:
  explicit BackendComm(c10::intrusive_ptr<Backend> backend) : backend_(std::move(backend)) {}
  c10::intrusive_ptr<c10d::Work> all_reduce(std::vector<torch::Tensor>& t) override {
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    return backend_->allreduce(t, opts);
  }
  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<torch::Tensor>& t, int root) override {
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    return backend_->broadcast(t, opts);
  }
  c10::intrusive_ptr<c10d::Work> all_gather(std::vector<std::vector<torch::Tensor>>& out,
                                            std::vector<torch::Tensor>& in) override {
    return backend_->allgather(out, in);
  }
  c10::intrusive_ptr<c10d::Work> barrier() override { return backend_->barrier(); }

 private:
  c10::intrusive_ptr<Backend> backend_;
};

std::unique_ptr<Comm> make_gloo(const LaunchEnv& env, const c10::intrusive_ptr<c10d::Store>& store,
                                std::chrono::milliseconds timeout) {
  auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
  // All ranks on this host: loopback. Otherwise GLOO_SOCKET_IFNAME names the interface, as in PyTorch; else the
  // address the host name resolves to.
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
  if (ifname != nullptr && *ifname != '\0')
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  else if (is_loopback(env.master_addr))
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  else
    opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  opts->threads = 2;
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("gloo", store);
  return std::make_unique<BackendComm<c10d::ProcessGroupGloo>>(
      c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, env.rank, env.world_size, opts));
}

std::unique_ptr<Comm> make_backend(const LaunchEnv& env, const torch::Device& device,
                                   const c10::intrusive_ptr<c10d::Store>& store, std::chrono::milliseconds timeout) {
  if (device.is_cuda()) {
#ifdef EM_HAVE_NCCL
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("nccl", store);
    return std::make_unique<BackendComm<c10d::ProcessGroupNCCL>>(
        c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, env.rank, env.world_size, opts));
#else
    log::warn("this build has no NCCL: CUDA tensors are reduced through Gloo (slower); docs/distributed.md");
#endif
  }
  return make_gloo(env, store, timeout);
}

// Every rank publishes "WORLD_SIZE pid host" and claims its rank once; all agree on rank 0's world size.
std::vector<RankInfo> check_ranks(const LaunchEnv& env, c10d::Store& store) {
  if (store.add(key("claim", env.rank), 1) > 1)
    fail("rendezvous: two processes were started as rank {} (RANK / SLURM_PROCID must differ per process)", env.rank);
  store.set(key("info", env.rank), bytes_of(fmt::format("{} {} {}", env.world_size, ::getpid(), hostname())));
  const RankInfo first = parse_rank_info(string_of(store.get(key("info", 0))));
  if (first.world_size != env.world_size)
    fail("rendezvous: rank 0 was started with WORLD_SIZE {} and this rank ({}) with {}: start every process with the "
         "same WORLD_SIZE",
         first.world_size, env.rank, env.world_size);
  std::vector<RankInfo> ranks(static_cast<size_t>(env.world_size));
  for (int r = 0; r < env.world_size; ++r) {
    RankInfo& info = ranks[static_cast<size_t>(r)];
    info = parse_rank_info(string_of(store.get(key("info", r))));
    if (info.world_size != env.world_size)
      fail("rendezvous: rank {} (pid {} on {}) was started with WORLD_SIZE {} and this rank ({}) with {}: start every "
           "process with the same WORLD_SIZE",
           r, info.pid, info.host, info.world_size, env.rank, env.world_size);
  }
  return ranks;
}

// Once a second each rank adds 1 to its heartbeat counter on its own connection, so a rank that stops counting is
// one that died or hangs.
void start_heartbeat(Comm& comm, int rank) {
  comm.heartbeat = std::thread([&comm, rank] {
    std::unique_lock<std::mutex> lock(comm.mutex);
    while (!comm.stopping) {
      try {
        comm.beat_store->add(key("beat", rank), 1);
      } catch (const std::exception&) {
        return;  // the store (rank 0) is gone; a collective will say so
      }
      comm.wake.wait_for(lock, std::chrono::seconds(1), [&] { return comm.stopping; });
    }
  });
}

}  // namespace

Group::Group() = default;

Group::~Group() {
  if (!comm_) return;
  {
    std::lock_guard<std::mutex> lock(comm_->mutex);
    comm_->stopping = true;
  }
  comm_->wake.notify_all();
  if (comm_->heartbeat.joinable()) comm_->heartbeat.join();
  // After a failed collective the backend may still hold work for a peer that is gone, and its destructor would
  // wait for it: the process is about to exit with the error, so leave it.
  if (failed_) (void)comm_.release();
}

std::unique_ptr<Group> Group::join(const LaunchEnv& env, const torch::Device& device,
                                   std::chrono::milliseconds timeout) {
  auto group = std::make_unique<Group>();
  group->device_ = device;
  if (!env.distributed()) return group;
  group->rank_ = env.rank;
  group->size_ = env.world_size;
  log::info("rendezvous: {} waiting for {} at {}:{}", env.describe(), count_of(env.world_size, "process", "processes"),
            env.master_addr, env.master_port);
  // Under torchrun the agent already serves a store at MASTER_ADDR:MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE) and
  // every rank is its client; otherwise rank 0 hosts it. Keys live under the attempt number, as a restarted torchrun
  // job reuses the agent's store.
  const char* agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
  const bool agent_store = agent != nullptr && std::string(agent) == "True";
  const char* restart = std::getenv("TORCHELASTIC_RESTART_COUNT");
  const std::string prefix = fmt::format("emkit/attempt_{}", restart != nullptr ? restart : "0");
  c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::PrefixStore>(
      prefix, connect_store(env, env.rank == 0 && !agent_store, /*wait_workers=*/!agent_store, timeout));
  c10::intrusive_ptr<c10d::Store> beat_store =
      c10::make_intrusive<c10d::PrefixStore>(prefix, connect_store(env, false, /*wait_workers=*/false, timeout));
  std::vector<RankInfo> ranks;
  try {
    ranks = check_ranks(env, *store);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("rendezvous: not every one of the {} processes joined at {}:{} within {} s ({}): start every rank with the "
         "same MASTER_ADDR, MASTER_PORT and WORLD_SIZE",
         env.world_size, env.master_addr, env.master_port, timeout.count() / 1000, first_line(e.what()));
  }
  try {
    group->comm_ = make_backend(env, device, store, timeout);
  } catch (const c10::Error& e) {
    fail("could not connect the {} processes' {} backend: {}", env.world_size, device.is_cuda() ? "CUDA" : "Gloo",
         first_line(e.what_without_backtrace()));
  }
  group->comm_->store = store;
  group->comm_->beat_store = beat_store;
  group->comm_->ranks = std::move(ranks);
  start_heartbeat(*group->comm_, env.rank);
  return group;
}

class Group::Pending {
 public:
  explicit Pending(c10::intrusive_ptr<c10d::Work> work) : work(std::move(work)) {}
  c10::intrusive_ptr<c10d::Work> work;
};

namespace {
template <typename Fn>
void run_collective(const Group& group, bool& failed, const char* during, Fn&& fn) {
  try {
    fn();
  } catch (const c10::Error& e) {
    failed = true;
    fail("{}", group.explain_failure(e.what_without_backtrace(), during));
  } catch (const Error&) {
    failed = true;
    throw;
  } catch (const std::exception& e) {
    failed = true;
    fail("{}", group.explain_failure(e.what(), during));
  }
}
}  // namespace

void Group::all_reduce_sum(torch::Tensor& tensor) {
  if (single()) return;
  auto pending = all_reduce_sum_async(tensor);
  wait(*pending);
}

std::shared_ptr<Group::Pending> Group::all_reduce_sum_async(torch::Tensor& tensor) {
  if (single()) return std::make_shared<Pending>(c10::intrusive_ptr<c10d::Work>());
  std::shared_ptr<Pending> pending;
  run_collective(*this, failed_, "an all-reduce", [&] {
    std::vector<torch::Tensor> t{tensor};
    pending = std::make_shared<Pending>(comm_->all_reduce(t));
  });
  return pending;
}

void Group::wait(Pending& pending) {
  if (!pending.work) return;
  run_collective(*this, failed_, "an all-reduce", [&] { pending.work->wait(); });
}

void Group::broadcast(torch::Tensor& tensor, int root) {
  if (single()) return;
  run_collective(*this, failed_, "a broadcast", [&] {
    std::vector<torch::Tensor> t{tensor};
    comm_->broadcast(t, root)->wait();
  });
}

std::vector<std::string> Group::all_gather_bytes(const std::string& bytes) {
  if (single()) return {bytes};
  const auto on_device = torch::TensorOptions().device(device_);
  std::vector<std::string> out;
  run_collective(*this, failed_, "an all-gather", [&] {
    std::vector<torch::Tensor> in{torch::tensor({static_cast<int64_t>(bytes.size())}, on_device.dtype(torch::kInt64))};
    std::vector<std::vector<torch::Tensor>> sizes(1);
    for (int r = 0; r < size_; ++r) sizes[0].push_back(torch::empty({1}, on_device.dtype(torch::kInt64)));
    comm_->all_gather(sizes, in)->wait();
    int64_t longest = 1;
    std::vector<int64_t> n;
    for (const auto& s : sizes[0]) n.push_back(s.cpu().item<int64_t>()), longest = std::max(longest, n.back());
    torch::Tensor mine = torch::zeros({longest}, torch::kUInt8);
    std::memcpy(mine.data_ptr(), bytes.data(), bytes.size());
    std::vector<torch::Tensor> data_in{mine.to(device_)};
    std::vector<std::vector<torch::Tensor>> data(1);
    for (int r = 0; r < size_; ++r) data[0].push_back(torch::empty({longest}, on_device.dtype(torch::kUInt8)));
    comm_->all_gather(data, data_in)->wait();
    for (int r = 0; r < size_; ++r) {
      torch::Tensor t = data[0][static_cast<size_t>(r)].cpu();
      out.emplace_back(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(n[static_cast<size_t>(r)]));
    }
  });
  return out;
}

void Group::barrier() {
  if (single()) return;
  run_collective(*this, failed_, "a barrier", [&] { comm_->barrier()->wait(); });
}

// Reads every rank's heartbeat counter twice, 2.5 s apart: the ranks that did not count are lost. If the store itself
// is gone, rank 0 (its host) is.
std::string Group::explain_failure(const std::string& what, const std::string& during) const {
  const std::string cause = first_line(what);
  if (!comm_) return cause;
  auto describe = [&](int r) {
    const RankInfo& info = comm_->ranks[static_cast<size_t>(r)];
    return fmt::format("rank {} (pid {} on {})", r, info.pid, info.host);
  };
  std::vector<int64_t> before(static_cast<size_t>(size_)), after(static_cast<size_t>(size_));
  std::vector<int> lost;
  try {
    for (int r = 0; r < size_; ++r) before[static_cast<size_t>(r)] = comm_->store->add(key("beat", r), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    for (int r = 0; r < size_; ++r) after[static_cast<size_t>(r)] = comm_->store->add(key("beat", r), 0);
    for (int r = 0; r < size_; ++r)
      if (r != rank_ && after[static_cast<size_t>(r)] == before[static_cast<size_t>(r)]) lost.push_back(r);
  } catch (const std::exception&) {
    if (rank_ != 0) lost = {0};
  }
  std::string names;
  for (int r : lost) names += (names.empty() ? "" : ", ") + describe(r);
  if (names.empty())
    return fmt::format("{} between the {} processes failed: {} (every rank still answers: a timeout of --ddp_timeout, "
                       "or a rank that stopped on an error of its own)",
                       during, size_, cause);
  return fmt::format("lost {}: it stopped answering during {} ({}); the other ranks stop too — the last checkpoint "
                     "is complete and resumable",
                     names, during, cause);
}

}  // namespace em::dist
