/* Runs a fuzz harness over files without libFuzzer, so every build can replay
 * the seed corpus and past crash inputs as an ordinary test.
 *
 * Usage: fuzz_<name> PATH...
 * A directory stands for the regular files directly inside it, taken in name
 * order so runs are reproducible; anything else is read as one input. Each
 * input sits in a heap buffer of exactly its size, so AddressSanitizer catches
 * a harness or codec reading even one byte past the end. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads PATH into a new buffer of its exact size. Returns 0 with *DATA and
 * *SIZE set (the caller frees *DATA), or a negative errno. */
static int read_file(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -errno;

    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int err = -errno;
        fclose(f);
        return err;
    }
    if (!S_ISREG(st.st_mode)) {
        fclose(f);
        return -EINVAL;
    }

    size_t n = (size_t)st.st_size;
    /* malloc(0) may return NULL; ask for one byte then but report size 0, so
     * any read of the empty input is still out of bounds for ASan. */
    uint8_t *buf = malloc(n > 0 ? n : 1);
    if (buf == NULL) {
        fclose(f);
        return -ENOMEM;
    }
    size_t got = n > 0 ? fread(buf, 1, n, f) : 0;
    int failed = got != n || ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return -EIO;
    }
    *data = buf;
    *size = n;
    return 0;
}

/* Runs the harness on the file at PATH. Returns 0 or a negative errno. */
static int replay_file(const char *path)
{
    uint8_t *data = NULL;
    size_t size = 0;
    int rc = read_file(path, &data, &size);
    if (rc < 0) {
        fprintf(stderr, "replay: cannot read %s: %s\n", path, strerror(-rc));
        return rc;
    }
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    const char *const *x = a;
    const char *const *y = b;
    return strcmp(*x, *y);
}

/* Collects the paths of the regular files directly in DIR, sorted, into
 * *PATHS (*COUNT entries; the caller frees each and the array). Returns 0 or a
 * negative errno. */
static int list_dir(const char *dir, char ***paths, size_t *count)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -errno;

    char **list = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        size_t len = strlen(dir) + 1 + strlen(de->d_name) + 1;
        char *path = malloc(len);
        if (path == NULL) {
            rc = -ENOMEM;
            break;
        }
        snprintf(path, len, "%s/%s", dir, de->d_name);
        /* stat rather than d_type: some file systems report DT_UNKNOWN, and a
         * symbolic link to a file should count as that file. */
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **grown = realloc(list, ncap * sizeof *grown);
            if (grown == NULL) {
                free(path);
                rc = -ENOMEM;
                break;
            }
            list = grown;
            cap = ncap;
        }
        list[n++] = path;
    }
    closedir(d);

    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            free(list[i]);
        free(list);
        return rc;
    }
    if (n > 0)
        qsort(list, n, sizeof *list, compare_names);
    *paths = list;
    *count = n;
    return 0;
}

/* Replays the files in DIR and adds their number to *TOTAL. Returns 0, or -1
 * after printing why. */
static int replay_dir(const char *dir, size_t *total)
{
    char **paths = NULL;
    size_t n = 0;
    int rc = list_dir(dir, &paths, &n);
    if (rc < 0) {
        fprintf(stderr, "replay: cannot list %s: %s\n", dir, strerror(-rc));
        return -1;
    }
    if (n == 0) {
        fprintf(stderr, "replay: %s holds no input files\n", dir);
        free(paths);
        return -1;
    }

    int result = 0;
    for (size_t i = 0; i < n; i++) {
        if (result == 0 && replay_file(paths[i]) < 0)
            result = -1;
        free(paths[i]);
    }
    free(paths);
    if (result == 0)
        *total += n;
    return result;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 1;
    }

    size_t total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: cannot read %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            if (replay_dir(argv[i], &total) < 0)
                return 1;
        } else {
            if (replay_file(argv[i]) < 0)
                return 1;
            total++;
        }
    }
    printf("replayed %zu inputs\n", total);
    return 0;
}
