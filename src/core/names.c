/* "Did you mean": the closest of a few known names to a misspelt one. */
#include "../internal.h"

/* Levenshtein distance, capped at 99 (names here are short). */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    int row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *ecp_closest_name(const char *word, const char *const *names, int n)
{
    if (!word || !names)
        return NULL;
    const char *best = NULL;
    int best_d = 99, limit = strlen(word) <= 4 ? 1 : 2;
    for (int i = 0; i < n; i++) {
        if (!names[i])
            continue;
        int d = edit_distance(word, names[i]);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    return best_d <= limit ? best : NULL;
}
