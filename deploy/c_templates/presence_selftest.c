/* Self-test of the C reference inference against onnxruntime's int8 outputs (test vectors).

Build: gcc -std=c99 -O2 -Wall -Wextra -Werror presence_model.c presence_selftest.c -lm -o presence_selftest
Run:   ./presence_selftest test_vectors.bin [max_lsb [bench_windows]]
test_vectors.bin (little-endian): "PRTV", uint32 n, uint32 n_in (frames*bins), uint32 n_out (classes),
then float32 inputs [n][n_in], float32 expected logits [n][n_out] (onnxruntime, int8 model).
Prints the max |C - onnxruntime| in float and in LSB of the logits' quantization; exits 1 when it
exceeds max_lsb (default 0). With bench_windows > 0 it also times that many inferences (one core). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "presence_model.h"

static int read_u32(FILE *f, uint32_t *v) {
    unsigned char b[4];
    if (fread(b, 1, 4, f) != 4) return 0;
    *v = (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
    return 1;
}

static int read_f32(FILE *f, float *out, size_t n) {
    size_t i;
    for (i = 0; i < n; ++i) {
        uint32_t bits;
        if (!read_u32(f, &bits)) return 0;
        memcpy(&out[i], &bits, sizeof bits);
    }
    return 1;
}

int main(int argc, char **argv) {
    FILE *f;
    char magic[4];
    uint32_t n, n_in, n_out, i, j;
    float *inputs, *expected;
    float logits[PRESENCE_N_CLASSES];
    double max_abs = 0.0;
    long max_lsb = 0, mismatched = 0, allowed = 0, bench = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s test_vectors.bin [max_lsb [bench_windows]]\n", argv[0]);
        return 2;
    }
    if (argc > 2) allowed = strtol(argv[2], NULL, 10);
    if (argc > 3) bench = strtol(argv[3], NULL, 10);
    f = fopen(argv[1], "rb");
    if (f == NULL || fread(magic, 1, 4, f) != 4 || memcmp(magic, "PRTV", 4) != 0 || !read_u32(f, &n) ||
        !read_u32(f, &n_in) || !read_u32(f, &n_out)) {
        fprintf(stderr, "%s: not a test vector file\n", argv[1]);
        return 2;
    }
    if (n == 0 || n_in != PRESENCE_INPUT_SIZE || n_out != PRESENCE_N_CLASSES) {
        fprintf(stderr, "test vectors are %lu x %lu -> %lu, the model takes %d -> %d\n", (unsigned long)n,
                (unsigned long)n_in, (unsigned long)n_out, PRESENCE_INPUT_SIZE, PRESENCE_N_CLASSES);
        return 2;
    }
    inputs = (float *)malloc(sizeof(float) * (size_t)n * n_in); /* the harness may allocate; the model does not */
    expected = (float *)malloc(sizeof(float) * (size_t)n * n_out);
    if (inputs == NULL || expected == NULL || !read_f32(f, inputs, (size_t)n * n_in) ||
        !read_f32(f, expected, (size_t)n * n_out)) {
        fprintf(stderr, "%s: truncated\n", argv[1]);
        return 2;
    }
    fclose(f);
    for (i = 0; i < n; ++i) {
        presence_infer(inputs + (size_t)i * n_in, logits, NULL);
        for (j = 0; j < n_out; ++j) {
            const double d = (double)logits[j] - (double)expected[(size_t)i * n_out + j];
            const double a = d < 0 ? -d : d;
            const long lsb = (long)(a / (double)PRESENCE_LOGITS_SCALE + 0.5);
            if (a > max_abs) max_abs = a;
            if (lsb > max_lsb) max_lsb = lsb;
            if (lsb > 0) ++mismatched;
        }
    }
    printf("n_vectors=%lu max_abs_diff=%.9g max_lsb=%ld mismatched_logits=%ld\n", (unsigned long)n, max_abs,
           max_lsb, mismatched);
    if (bench > 0) {
        clock_t t0 = clock();
        double seconds;
        long k;
        volatile float sink = 0.0f;
        for (k = 0; k < bench; ++k) {
            presence_infer(inputs + (size_t)(k % (long)n) * n_in, logits, NULL);
            sink += logits[0];
        }
        seconds = (double)(clock() - t0) / (double)CLOCKS_PER_SEC;
        printf("bench_windows=%ld seconds=%.6f windows_per_s=%.3f\n", bench, seconds,
               seconds > 0 ? (double)bench / seconds : 0.0);
    }
    free(inputs);
    free(expected);
    return max_lsb <= allowed ? 0 : 1;
}
