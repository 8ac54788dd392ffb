/*
 * gemlive's instruction counter: a TCG plugin for qemu-user (cross/insn.sh builds and loads
 * it). It counts every guest instruction executed, in every thread, and the instructions
 * executed between the markers the program under test sets with
 * `prctl(0x67656d6c, 1)` (start) and `prctl(0x67656d6c, 2)` (stop) (gemlive's `bench`
 * workloads: set-up and input synthesis fall outside). prctl with that option is otherwise
 * an EINVAL no-op, so the marked binary runs the same without the plugin.
 *
 * Arguments: out=FILE (where the counts go; default stderr), sys=N (the prctl syscall number
 * of the guest: 167 on aarch64, 172 on arm), tbs=FILE (a profile: for every translation block
 * executed inside the marked regions, its guest address, its instruction count and how often it
 * ran; cross/insn.sh's INSN_PROFILE turns it into instructions per function).
 *
 * Counting is per executed translation block, with an atomic add: exact across threads
 * (qemu-user runs guest threads in parallel), at some speed cost.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MARK_OPTION 0x67656d6cULL

static uint64_t total;
static uint64_t marked;
static uint64_t started_at;
static int running;
static uint64_t regions;
static int64_t prctl_nr = 167;
static char out_path[4096];
static char tbs_path[4096];

/* One translated block, for the profile (tbs=). A block translated twice gets two records. */
struct tb_rec {
    uint64_t vaddr;
    uint64_t insns;
    uint64_t runs;
    struct tb_rec *next;
};
static struct tb_rec *tb_list;

static void tb_exec_profiled(unsigned int vcpu_index, void *udata)
{
    (void)vcpu_index;
    struct tb_rec *r = udata;
    __atomic_fetch_add(&total, r->insns, __ATOMIC_RELAXED);
    if (__atomic_load_n(&running, __ATOMIC_RELAXED)) {
        __atomic_fetch_add(&r->runs, 1, __ATOMIC_RELAXED);
    }
}

static void tb_exec(unsigned int vcpu_index, void *udata)
{
    (void)vcpu_index;
    __atomic_fetch_add(&total, (uint64_t)(uintptr_t)udata, __ATOMIC_RELAXED);
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    if (tbs_path[0]) {
        struct tb_rec *r = calloc(1, sizeof *r);
        if (r) {
            r->vaddr = qemu_plugin_tb_vaddr(tb);
            r->insns = n;
            /* Translation is serialised by qemu; the list is only read at exit. */
            r->next = __atomic_load_n(&tb_list, __ATOMIC_ACQUIRE);
            __atomic_store_n(&tb_list, r, __ATOMIC_RELEASE);
            qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec_profiled, QEMU_PLUGIN_CB_NO_REGS, r);
            return;
        }
    }
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS,
                                         (void *)(uintptr_t)n);
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num,
                       uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                       uint64_t a6, uint64_t a7, uint64_t a8)
{
    (void)id; (void)vcpu_index; (void)a3; (void)a4; (void)a5; (void)a6; (void)a7; (void)a8;
    if (num != prctl_nr || a1 != MARK_OPTION) {
        return;
    }
    uint64_t now = __atomic_load_n(&total, __ATOMIC_RELAXED);
    if (a2 == 1 && !running) {
        __atomic_store_n(&running, 1, __ATOMIC_RELAXED);
        started_at = now;
    } else if (a2 == 2 && running) {
        __atomic_store_n(&running, 0, __ATOMIC_RELAXED);
        marked += now - started_at;
        regions++;
    }
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
    (void)id; (void)p;
    FILE *f = out_path[0] ? fopen(out_path, "w") : stderr;
    if (!f) {
        perror(out_path);
        return;
    }
    fprintf(f, "total %" PRIu64 "\nmarked %" PRIu64 "\nregions %" PRIu64 "\n",
            __atomic_load_n(&total, __ATOMIC_RELAXED), marked, regions);
    if (f != stderr) {
        fclose(f);
    }
    if (tbs_path[0]) {
        FILE *t = fopen(tbs_path, "w");
        if (!t) {
            perror(tbs_path);
            return;
        }
        for (struct tb_rec *r = tb_list; r; r = r->next) {
            if (r->runs) {
                fprintf(t, "%" PRIx64 " %" PRIu64 " %" PRIu64 "\n", r->vaddr, r->insns, r->runs);
            }
        }
        fclose(t);
    }
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
        } else if (strncmp(argv[i], "tbs=", 4) == 0) {
            snprintf(tbs_path, sizeof tbs_path, "%s", argv[i] + 4);
        } else if (strncmp(argv[i], "sys=", 4) == 0) {
            prctl_nr = strtoll(argv[i] + 4, NULL, 10);
        } else {
            fprintf(stderr, "count: unknown argument %s\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
