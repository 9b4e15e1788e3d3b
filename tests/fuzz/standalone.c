/*
 * standalone.c - drives a libFuzzer target without libFuzzer (gcc builds).
 *
 * Replays every file of the seed corpus directory given on the command line,
 * then feeds a few thousand seeded pseudo-random inputs, some derived by
 * mutating corpus files. A crash or sanitizer report fails the test; the
 * seed is printed so it can be reproduced (PPDB_SEED).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT 65536
#define RANDOM_RUNS 4000

static uint8_t *read_file(const char *path, size_t *n_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = malloc(FUZZ_MAX_INPUT);
    size_t n = fread(buf, 1, FUZZ_MAX_INPUT, f);
    fclose(f);
    *n_out = n;
    return buf;
}

int main(int argc, char **argv)
{
    uint8_t *seeds[256];
    size_t seed_len[256], nseeds = 0;
    DIR *d = argc > 1 ? opendir(argv[1]) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL && nseeds < 256) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", argv[1], de->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        seeds[nseeds] = read_file(path, &seed_len[nseeds]);
        if (seeds[nseeds]) {
            LLVMFuzzerTestOneInput(seeds[nseeds], seed_len[nseeds]);
            nseeds++;
        }
    }
    if (d)
        closedir(d);
    char *fake_argv[] = {argv[0], NULL};
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, check_seed(1, fake_argv, 1));
    uint8_t *buf = malloc(FUZZ_MAX_INPUT);
    for (int i = 0; i < RANDOM_RUNS; i++) {
        size_t n = ppdb_rng_below(&rng, 2048);
        if (nseeds && (i & 1)) {
            size_t k = ppdb_rng_below(&rng, nseeds);
            n = seed_len[k];
            memcpy(buf, seeds[k], n);
            for (int flips = 0; flips < 4 && n; flips++)
                buf[ppdb_rng_below(&rng, n)] ^= (uint8_t)(1u << ppdb_rng_below(&rng, 8));
            n = ppdb_rng_below(&rng, n + 1);
        } else {
            ppdb_rng_bytes(&rng, buf, n);
        }
        LLVMFuzzerTestOneInput(buf, n);
    }
    free(buf);
    for (size_t i = 0; i < nseeds; i++)
        free(seeds[i]);
    printf("replayed %zu corpus files and %d generated inputs\n", nseeds, RANDOM_RUNS);
    return 0;
}
