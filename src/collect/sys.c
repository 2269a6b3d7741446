/* sys.c — the machine itself: CPU and memory from /proc, free disk from statvfs, the
 * battery from /sys/class/power_supply. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "collect/collect.h"

void collect_sys_init(struct collect_sys *s) {
    memset(s, 0, sizeof(*s));
    s->cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (s->cpus < 1)
        s->cpus = 1;
}

/* The "cpu " line of /proc/stat: busy and total jiffies. */
static int read_cpu(uint64_t *busy, uint64_t *total) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    char line[512];
    int ok = -1;
    if (fgets(line, sizeof(line), f) && strncmp(line, "cpu ", 4) == 0) {
        uint64_t v[8] = {0};
        char *p = line + 4, *end;
        int n = 0;
        for (; n < 8; n++) {
            v[n] = strtoull(p, &end, 10);
            if (end == p)
                break;
            p = end;
        }
        if (n >= 4) {
            uint64_t idle = v[3] + v[4]; /* idle + iowait */
            *total = 0;
            for (int i = 0; i < n; i++)
                *total += v[i];
            *busy = *total - idle;
            ok = 0;
        }
    }
    fclose(f);
    return ok;
}

/* A "Name:   123 kB" line of /proc/meminfo, in bytes; -1 when absent. */
static int64_t meminfo(const char *name) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return -1;
    char line[256];
    size_t n = strlen(name);
    int64_t out = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, name, n) == 0 && line[n] == ':') {
            char *end;
            long long kb = strtoll(line + n + 1, &end, 10);
            if (end != line + n + 1 && kb >= 0)
                out = (int64_t)kb * 1024;
            break;
        }
    }
    fclose(f);
    return out;
}

am_rc collect_sys_system(struct collect_sys *s, const char *disk_path, json_t **payload) {
    json_t *p = json_object();
    if (!p)
        return AM_ENOMEM;
    uint64_t busy, total;
    if (read_cpu(&busy, &total) == 0) {
        if (s->have_cpu && total > s->cpu_total && busy >= s->cpu_busy) {
            double pct = 100.0 * (double)s->cpus * (double)(busy - s->cpu_busy) /
                         (double)(total - s->cpu_total);
            json_object_set_new(p, "cpu_percent", json_real((double)(int64_t)(pct * 10) / 10));
        }
        s->cpu_busy = busy;
        s->cpu_total = total;
        s->have_cpu = 1;
    }
    int64_t mem_total = meminfo("MemTotal"), mem_avail = meminfo("MemAvailable");
    if (mem_total >= 0 && mem_avail >= 0 && mem_total >= mem_avail)
        json_object_set_new(p, "memory_used", json_integer(mem_total - mem_avail));
    struct statvfs vfs;
    if (disk_path && statvfs(disk_path, &vfs) == 0)
        json_object_set_new(p, "disk_free",
                            json_integer((json_int_t)((uint64_t)vfs.f_bavail * vfs.f_frsize)));
    *payload = p;
    return AM_OK;
}

static int read_small(const char *dir, const char *name, const char *file, char *out,
                      size_t out_len) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s/%s", dir, name, file);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int ok = fgets(out, (int)out_len, f) ? 0 : -1;
    fclose(f);
    out[strcspn(out, "\n")] = 0;
    return ok;
}

am_rc collect_sys_battery(const char *dir, json_t **payload) {
    *payload = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return AM_ENOTFOUND;
    am_rc rc = AM_ENOTFOUND;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char type[64], cap[64], status[64] = "";
        if (read_small(dir, de->d_name, "type", type, sizeof(type)) != 0 ||
            strcmp(type, "Battery") != 0)
            continue;
        if (read_small(dir, de->d_name, "capacity", cap, sizeof(cap)) != 0)
            continue;
        char *end;
        long level = strtol(cap, &end, 10);
        if (end == cap || level < 0 || level > 100)
            continue;
        read_small(dir, de->d_name, "status", status, sizeof(status));
        *payload = json_pack("{s:i,s:b}", "level", (json_int_t)level, "charging",
                             strcmp(status, "Charging") == 0 || strcmp(status, "Full") == 0);
        rc = *payload ? AM_OK : AM_ENOMEM;
        break;
    }
    closedir(d);
    return rc;
}
