/* Loss/accuracy-versus-sparsity plots of a sweep CSV, drawn by gnuplot. */
#ifndef ECP_CLI_PLOT_H
#define ECP_CLI_PLOT_H
#include "ecprune.h"

typedef struct {
    char method[48];
    char schedule[32];
    double sparsity;
    long seed;
    double loss, accuracy, seconds; /* accuracy < 0: regression */
    char arch[400];                 /* the network evaluated, e.g. 784-300-100-10 */
} sweep_row;

/* Writes a PNG (atomically) with test loss (log scale) and, for classification, accuracy
 * against sparsity: one curve per method (mean over seeds), the min-max band over seeds, and
 * the dense model as a horizontal line. */
ecp_status plot_sweep(const sweep_row *rows, int n, const char *png, const char *title,
                      ecp_error *err);
#endif
