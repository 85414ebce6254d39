/* edgeopt's instruction counter: a qemu TCG plugin (plugin API version 1, qemu 7.2).
 *
 * Counts the guest instructions executed between two marker syscalls the guest makes around each inference
 * (sched_get_priority_max with a magic policy number: a harmless syscall nothing else calls with it) and appends
 * one count per window to the file named by the plugin argument out=PATH. Written here because no Debian binary
 * package ships a qemu plugin or qemu-plugin.h: the few API functions used are declared below, as the API
 * defines them, and the file compiles with the system's C compiler alone (gcc -O2 -shared -fPIC).
 * Counting is per translated block, inline (no helper call), so it does not change what it counts.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stddef.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num,
                                              uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                                              uint64_t a6, uint64_t a7, uint64_t a8);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_syscall_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

#define SYS_SCHED_GET_PRIORITY_MAX 125 /* aarch64 */
#define MARK_START 0x6564676fULL      /* "edgo" */
#define MARK_STOP 0x6564676eULL

static uint64_t insns;
static uint64_t start;
static FILE *out;

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &insns, qemu_plugin_tb_n_insns(tb));
}

static void syscall_cb(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2, uint64_t a3,
                       uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8) {
    (void)id; (void)vcpu; (void)a2; (void)a3; (void)a4; (void)a5; (void)a6; (void)a7; (void)a8;
    if (num != SYS_SCHED_GET_PRIORITY_MAX) return;
    if (a1 == MARK_START) {
        start = insns;
    } else if (a1 == MARK_STOP && out) {
        fprintf(out, "%llu\n", (unsigned long long)(insns - start));
        fflush(out);
    }
}

static void at_exit(qemu_plugin_id_t id, void *p) {
    (void)id; (void)p;
    if (out) fclose(out);
    out = NULL;
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                                int argc, char **argv) {
    (void)info;
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "out=", 4) == 0) out = fopen(argv[i] + 4, "w");
    if (!out) return -1; /* qemu refuses to start: no silent run without counts */
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, syscall_cb);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
