/* Raw libraft throughput baseline for bench/consensus_bench.py (run by hand, not by tests).
 *
 * A 3-server libraft (canonical/raft 0.15) cluster over raft_uv_tcp on 127.0.0.1, with a
 * trivial state machine (counts entries), driven by the leader with N raft_apply requests
 * always in flight (each completion submits the next). Prints one JSON object on stdout.
 *
 *   raw_raft --dir D --ports P1,P2,P3 [--inflight 10000] [--seconds 5] [--warmup 1]
 *            [--payload 8] [--procs 1 | --server I]
 *
 * Without --server: the three servers run in this one process on one libuv loop (one thread).
 * With --server I (1..3): this process is server I only; run three of them. The one that
 * becomes leader drives the load, prints the JSON and exits; the others run until killed or
 * until --max-seconds (default 60) have passed, so that none is ever left behind.
 *
 * Settings match the Synod agent's engine: election 300 ms, heartbeat 100 ms, pre-vote, snapshot
 * threshold 8192 / trailing 2048, install-snapshot timeout 2 s, connect retry 100 ms.
 * libraft requires entry payloads to be multiples of 8 bytes: --payload is rounded up.
 *
 * Build: gcc -O2 -o raw_raft bench/raw_raft.c -lraft -luv
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#define N_SERVERS 3

struct fsm_data {
  uint64_t applied;
};

struct server {
  int id; /* 1..3 */
  char address[64];
  char dir[512];
  struct raft_uv_transport transport;
  struct raft_io io;
  struct raft raft;
  struct raft_fsm fsm;
  struct fsm_data fsm_data;
  bool running;
};

static struct {
  const char *dir;
  int ports[N_SERVERS];
  unsigned inflight;
  double seconds;
  double warmup;
  size_t payload;
  int only_server; /* 0: all three here */
  double max_seconds;
} opt = {NULL, {0, 0, 0}, 10000, 5.0, 1.0, 8, 0, 60.0};

static uv_loop_t *loop;
static struct server servers[N_SERVERS];
static uv_timer_t poll_timer;
static struct server *driver; /* the leader driving the load */
static struct raft_apply *requests;
static unsigned in_flight;
static bool submitting;
static bool measuring;
static bool finished;
static uint64_t seq;
static uint64_t done_total, done_window, failed, submit_errors;
static int first_error;
static double t_start, t_elected, t_window0, t_window1;
static struct rusage ru_window0, ru_window1;
static int closing;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(const struct rusage *ru) {
  return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
         (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

/* ---- trivial state machine ---- */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result) {
  struct fsm_data *d = fsm->data;
  (void)buf;
  d->applied++;
  *result = NULL;
  return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs) {
  struct fsm_data *d = fsm->data;
  *bufs = raft_malloc(sizeof **bufs);
  if (*bufs == NULL) return RAFT_NOMEM;
  (*bufs)[0].len = sizeof(uint64_t);
  (*bufs)[0].base = raft_malloc(sizeof(uint64_t));
  if ((*bufs)[0].base == NULL) {
    raft_free(*bufs);
    return RAFT_NOMEM;
  }
  memcpy((*bufs)[0].base, &d->applied, sizeof(uint64_t));
  *n_bufs = 1;
  return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf) {
  struct fsm_data *d = fsm->data;
  if (buf->len >= sizeof(uint64_t)) memcpy(&d->applied, buf->base, sizeof(uint64_t));
  raft_free(buf->base);
  return 0;
}

/* ---- load ---- */

static void submit(struct raft_apply *req);

static void apply_cb(struct raft_apply *req, int status, void *result) {
  (void)result;
  in_flight--;
  if (status != 0) {
    if (!finished) { /* not the RAFT_SHUTDOWN of the requests still in flight at the end */
      failed++;
      if (first_error == 0) first_error = status;
    }
  } else {
    done_total++;
    if (measuring) done_window++;
  }
  if (submitting) submit(req);
}

static void submit(struct raft_apply *req) {
  struct raft_buffer buf;
  buf.len = opt.payload;
  buf.base = raft_malloc(buf.len);
  if (buf.base == NULL) {
    submit_errors++;
    return;
  }
  memset(buf.base, 0, buf.len);
  seq++;
  memcpy(buf.base, &seq, sizeof seq < buf.len ? sizeof seq : buf.len);
  req->data = NULL;
  int rv = raft_apply(&driver->raft, req, &buf, 1, apply_cb);
  if (rv != 0) {
    raft_free(buf.base);
    submit_errors++;
    if (first_error == 0) first_error = rv;
    return;
  }
  in_flight++;
}

static void close_cb(struct raft *r) {
  struct server *s = r->data;
  raft_uv_close(&s->io);
  raft_uv_tcp_close(&s->transport);
  s->running = false;
  closing--;
}

static void close_all(void) {
  uv_timer_stop(&poll_timer);
  uv_close((uv_handle_t *)&poll_timer, NULL);
  for (int i = 0; i < N_SERVERS; i++) {
    if (servers[i].running) {
      closing++;
      raft_close(&servers[i].raft, close_cb);
    }
  }
}

static void print_result(void) {
  double window = t_window1 - t_window0;
  double cpu = cpu_s(&ru_window1) - cpu_s(&ru_window0);
  uint64_t applied[N_SERVERS];
  for (int i = 0; i < N_SERVERS; i++) applied[i] = servers[i].fsm_data.applied;
  printf("{\"mode\": \"%s\", \"leader_id\": %d, \"inflight\": %u, \"payload_bytes\": %zu, "
         "\"warmup_s\": %.3f, \"window_s\": %.3f, \"entries_in_window\": %" PRIu64
         ", \"entries_per_s\": %.1f, \"entries_total\": %" PRIu64 ", \"failed\": %" PRIu64
         ", \"submit_errors\": %" PRIu64 ", \"first_error\": \"%s\", "
         "\"election_s\": %.3f, \"process_cpu_s_in_window\": %.3f, "
         "\"process_cpu_pct_of_one_core\": %.1f, \"t_window0_mono\": %.6f, "
         "\"t_window1_mono\": %.6f",
         opt.only_server ? "3 processes" : "1 process, 3 servers, 1 thread", driver->id,
         opt.inflight, opt.payload, opt.warmup, window, done_window,
         window > 0 ? (double)done_window / window : 0.0, done_total, failed, submit_errors,
         first_error ? raft_strerror(first_error) : "", t_elected - t_start, cpu,
         window > 0 ? 100.0 * cpu / window : 0.0, t_window0, t_window1);
  if (!opt.only_server) {
    printf(", \"fsm_applied\": [%" PRIu64 ", %" PRIu64 ", %" PRIu64 "]", applied[0], applied[1],
           applied[2]);
  }
  printf("}\n");
  fflush(stdout);
}

static void poll_cb(uv_timer_t *timer) {
  (void)timer;
  double t = now_s();
  if (finished) return;
  if (driver == NULL) {
    for (int i = 0; i < N_SERVERS; i++) {
      if (servers[i].running && raft_state(&servers[i].raft) == RAFT_LEADER) {
        driver = &servers[i];
        break;
      }
    }
    if (driver != NULL) {
      t_elected = t;
      t_window0 = t + opt.warmup;
      submitting = true;
      for (unsigned i = 0; i < opt.inflight && submitting; i++) submit(&requests[i]);
      return;
    }
    if (t - t_start > opt.max_seconds) {
      fprintf(stderr, "raw_raft: no leader after %.1f s; giving up\n", opt.max_seconds);
      finished = true;
      close_all();
    }
    return;
  }
  if (!measuring && t_window1 == 0 && t >= t_window0) {
    measuring = true;
    t_window0 = t;
    getrusage(RUSAGE_SELF, &ru_window0);
  }
  if (measuring && t >= t_window0 + opt.seconds) {
    measuring = false;
    submitting = false;
    t_window1 = t;
    getrusage(RUSAGE_SELF, &ru_window1);
    finished = true;
    print_result();
    close_all(); /* in-flight requests complete with RAFT_SHUTDOWN */
  }
  if (raft_state(&driver->raft) != RAFT_LEADER && !finished) {
    fprintf(stderr, "raw_raft: server %d lost leadership during the run\n", driver->id);
  }
}

static int start_server(struct server *s, int id) {
  int rv;
  s->id = id;
  snprintf(s->address, sizeof s->address, "127.0.0.1:%d", opt.ports[id - 1]);
  snprintf(s->dir, sizeof s->dir, "%s/s%d", opt.dir, id);
  if (mkdir(s->dir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "raw_raft: mkdir %s: %s\n", s->dir, strerror(errno));
    return -1;
  }
  s->fsm.version = 1;
  s->fsm.data = &s->fsm_data;
  s->fsm.apply = fsm_apply;
  s->fsm.snapshot = fsm_snapshot;
  s->fsm.restore = fsm_restore;
  if ((rv = raft_uv_tcp_init(&s->transport, loop)) != 0) {
    fprintf(stderr, "raw_raft: raft_uv_tcp_init: %s\n", raft_strerror(rv));
    return -1;
  }
  if ((rv = raft_uv_init(&s->io, loop, s->dir, &s->transport)) != 0) {
    fprintf(stderr, "raw_raft: raft_uv_init(%s): %s\n", s->dir, s->io.errmsg);
    return -1;
  }
  if ((rv = raft_init(&s->raft, &s->io, &s->fsm, (raft_id)id, s->address)) != 0) {
    fprintf(stderr, "raw_raft: raft_init: %s\n", raft_errmsg(&s->raft));
    return -1;
  }
  s->raft.data = s;
  raft_set_election_timeout(&s->raft, 300);
  raft_set_heartbeat_timeout(&s->raft, 100);
  raft_set_snapshot_threshold(&s->raft, 8192);
  raft_set_snapshot_trailing(&s->raft, 2048);
  raft_set_install_snapshot_timeout(&s->raft, 2000);
  raft_set_pre_vote(&s->raft, true);
  raft_uv_set_connect_retry_delay(&s->io, 100);

  struct raft_configuration conf;
  raft_configuration_init(&conf);
  for (int i = 0; i < N_SERVERS; i++) {
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%d", opt.ports[i]);
    raft_configuration_add(&conf, (raft_id)(i + 1), address, RAFT_VOTER);
  }
  rv = raft_bootstrap(&s->raft, &conf);
  raft_configuration_close(&conf);
  if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
    fprintf(stderr, "raw_raft: raft_bootstrap: %s\n", raft_errmsg(&s->raft));
    return -1;
  }
  if ((rv = raft_start(&s->raft)) != 0) {
    fprintf(stderr, "raw_raft: raft_start: %s\n", raft_errmsg(&s->raft));
    return -1;
  }
  s->running = true;
  return 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: raw_raft --dir D --ports P1,P2,P3 [--inflight N] [--seconds S] [--warmup W]\n"
          "                [--payload BYTES] [--server I] [--max-seconds M]\n");
  exit(2);
}

int main(int argc, char **argv) {
  static struct option longopts[] = {
      {"dir", required_argument, NULL, 'd'},      {"ports", required_argument, NULL, 'p'},
      {"inflight", required_argument, NULL, 'n'}, {"seconds", required_argument, NULL, 's'},
      {"warmup", required_argument, NULL, 'w'},   {"payload", required_argument, NULL, 'b'},
      {"server", required_argument, NULL, 'i'},   {"max-seconds", required_argument, NULL, 'm'},
      {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
      case 'd':
        opt.dir = optarg;
        break;
      case 'p':
        if (sscanf(optarg, "%d,%d,%d", &opt.ports[0], &opt.ports[1], &opt.ports[2]) != 3) usage();
        break;
      case 'n':
        opt.inflight = (unsigned)strtoul(optarg, NULL, 10);
        break;
      case 's':
        opt.seconds = atof(optarg);
        break;
      case 'w':
        opt.warmup = atof(optarg);
        break;
      case 'b':
        opt.payload = (size_t)strtoul(optarg, NULL, 10);
        break;
      case 'i':
        opt.only_server = atoi(optarg);
        break;
      case 'm':
        opt.max_seconds = atof(optarg);
        break;
      default:
        usage();
    }
  }
  if (opt.dir == NULL || opt.ports[0] == 0 || opt.inflight == 0 || opt.seconds <= 0 ||
      opt.only_server < 0 || opt.only_server > N_SERVERS) {
    usage();
  }
  if (opt.payload < 8) opt.payload = 8;
  opt.payload = (opt.payload + 7) / 8 * 8; /* libraft: payloads are multiples of 8 bytes */
  if (opt.max_seconds < opt.seconds + opt.warmup + 10) opt.max_seconds = opt.seconds + opt.warmup + 10;

  requests = calloc(opt.inflight, sizeof *requests);
  if (requests == NULL) return 1;
  loop = uv_default_loop();
  t_start = now_s();
  for (int i = 0; i < N_SERVERS; i++) {
    if (opt.only_server != 0 && opt.only_server != i + 1) continue;
    if (start_server(&servers[i], i + 1) != 0) return 1;
  }
  uv_timer_init(loop, &poll_timer);
  uv_timer_start(&poll_timer, poll_cb, 10, 10);
  /* Followers of the 3-process mode end by themselves after max_seconds: poll_cb gives up
   * only while no local leader exists, so bound the whole run here too. */
  while (uv_run(loop, UV_RUN_ONCE) != 0) {
    if (!finished && now_s() - t_start > opt.max_seconds) {
      fprintf(stderr, "raw_raft: max run time %.0f s reached\n", opt.max_seconds);
      finished = true;
      close_all();
    }
  }
  uv_loop_close(loop);
  free(requests);
  return driver != NULL && t_window1 > 0 ? 0 : 1;
}
