// This CPU's two limits for the speed benchmark, measured (machineLimits.ts compiles this with
// `cc -O3 -march=native -pthread` and runs it):
//   int8 THREADS SECONDS       peak int8 multiply-accumulate rate: every thread issues
//                              independent VNNI dot-product instructions (vpdpbusd: 64 u8×s8
//                              products added into 16 int32 lanes, AVX-512) or, without VNNI,
//                              AVX2 vpmaddubsw (32 products into 16 int16 lanes). 1 product = 2 ops.
//   bandwidth THREADS MIB      streaming read bandwidth: the threads read disjoint parts of a
//                              MIB-mebibyte buffer (much larger than the last-level cache) with
//                              vector loads, several passes.
// On a shared machine a thread is preempted now and then, so every thread times short windows
// (about a millisecond of instructions, or 4 MiB read) and keeps its best window: the rate of the
// core while the thread had it. The threads' best rates add up to the figure. Each mode prints
// one JSON line.

#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
  double seconds;
  const uint8_t *data;
  size_t bytes;
  int passes;
  /** The best window's rate (operations or bytes per second). */
  double best;
  uint64_t sink;
} Work;

#define WINDOW_BYTES ((size_t)4 << 20)

#define ACC 12

#if defined(__AVX512VNNI__) && defined(__AVX512F__)
#define INT8_KIND "avx512-vnni vpdpbusd"
#define OPS_PER_INSTRUCTION (64 * 2)
typedef __m512i vec;
static inline vec step(vec acc, vec a, vec b) { return _mm512_dpbusd_epi32(acc, a, b); }
static inline vec splat(int x) { return _mm512_set1_epi32(x); }
static inline uint64_t fold(vec v) { return (uint64_t)_mm512_reduce_add_epi32(v); }
#elif defined(__AVXVNNI__)
#define INT8_KIND "avx-vnni vpdpbusd (256-bit)"
#define OPS_PER_INSTRUCTION (32 * 2)
typedef __m256i vec;
static inline vec step(vec acc, vec a, vec b) { return _mm256_dpbusd_avx_epi32(acc, a, b); }
static inline vec splat(int x) { return _mm256_set1_epi32(x); }
static inline uint64_t fold(vec v) { return (uint64_t)_mm256_extract_epi32(v, 0); }
#elif defined(__AVX2__)
#define INT8_KIND "avx2 vpmaddubsw"
#define OPS_PER_INSTRUCTION (32 * 2)
typedef __m256i vec;
static inline vec step(vec acc, vec a, vec b) { return _mm256_add_epi16(acc, _mm256_maddubs_epi16(a, b)); }
static inline vec splat(int x) { return _mm256_set1_epi32(x); }
static inline uint64_t fold(vec v) { return (uint64_t)_mm256_extract_epi32(v, 0); }
#else
#error "machineLimits.c needs AVX2 or VNNI"
#endif

static void *int8_thread(void *arg) {
  Work *w = (Work *)arg;
  vec acc[ACC];
  for (int i = 0; i < ACC; i++) acc[i] = splat(i);
  vec a = splat(0x01020304), b = splat(0x05060708);
  const uint64_t inner = 1 << 12;
  double start = now(), t = start;
  w->best = 0;
  do {
    double t0 = t;
    for (uint64_t r = 0; r < inner; r++) {
      for (int i = 0; i < ACC; i++) acc[i] = step(acc[i], a, b);
      __asm__ volatile("" : "+x"(a), "+x"(b));
    }
    t = now();
    double rate = inner * ACC * (double)OPS_PER_INSTRUCTION / (t - t0);
    if (rate > w->best) w->best = rate;
  } while (t - start < w->seconds);
  uint64_t s = 0;
  for (int i = 0; i < ACC; i++) s += fold(acc[i]);
  w->sink = s;
  return NULL;
}

static void *read_thread(void *arg) {
  Work *w = (Work *)arg;
  w->best = 0;
  for (int p = 0; p < w->passes; p++) {
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t at = 0; at + WINDOW_BYTES <= w->bytes; at += WINDOW_BYTES) {
      double t0 = now();
      for (size_t i = at; i < at + WINDOW_BYTES; i += 128) {
        s0 = _mm256_add_epi64(s0, _mm256_load_si256((const __m256i *)(w->data + i)));
        s1 = _mm256_add_epi64(s1, _mm256_load_si256((const __m256i *)(w->data + i + 32)));
        s2 = _mm256_add_epi64(s2, _mm256_load_si256((const __m256i *)(w->data + i + 64)));
        s3 = _mm256_add_epi64(s3, _mm256_load_si256((const __m256i *)(w->data + i + 96)));
      }
      double rate = WINDOW_BYTES / (now() - t0);
      if (rate > w->best) w->best = rate;
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3));
    w->sink += (uint64_t)_mm256_extract_epi64(s, 0);
  }
  return NULL;
}

static void run(int threads, Work *work, void *(*fn)(void *)) {
  pthread_t ids[64];
  for (int t = 0; t < threads; t++) pthread_create(&ids[t], NULL, fn, &work[t]);
  for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s int8 THREADS SECONDS | bandwidth THREADS MIB\n", argv[0]);
    return 2;
  }
  int threads = atoi(argv[2]);
  if (threads < 1 || threads > 64) return 2;
  Work work[64];
  memset(work, 0, sizeof work);
  if (strcmp(argv[1], "int8") == 0) {
    for (int t = 0; t < threads; t++) work[t].seconds = atof(argv[3]);
    run(threads, work, int8_thread);
    double rate = 0;
    uint64_t sink = 0;
    for (int t = 0; t < threads; t++) {
      rate += work[t].best;
      sink += work[t].sink;
    }
    printf("{\"kind\":\"int8\",\"instruction\":\"%s\",\"threads\":%d,\"opsPerSecond\":%.6e,\"sink\":%llu}\n", INT8_KIND, threads, rate, (unsigned long long)(sink & 1));
    return 0;
  }
  if (strcmp(argv[1], "bandwidth") == 0) {
    size_t bytes = (size_t)atol(argv[3]) << 20;
    uint8_t *data = aligned_alloc(4096, bytes);
    if (!data) return 3;
    for (size_t i = 0; i < bytes; i++) data[i] = (uint8_t)i;
    size_t part = (bytes / threads) & ~(size_t)127;
    for (int t = 0; t < threads; t++) {
      work[t].data = data + t * part;
      work[t].bytes = part;
      work[t].passes = 5;
    }
    run(threads, work, read_thread);
    double rate = 0;
    uint64_t sink = 0;
    for (int t = 0; t < threads; t++) {
      rate += work[t].best;
      sink += work[t].sink;
    }
    printf("{\"kind\":\"bandwidth\",\"threads\":%d,\"bufferBytes\":%zu,\"bytesPerSecond\":%.6e,\"sink\":%llu}\n", threads, bytes, rate, (unsigned long long)(sink & 1));
    free(data);
    return 0;
  }
  fprintf(stderr, "unknown mode %s\n", argv[1]);
  return 2;
}
