/* test_blobs.c — blob files (streamed, hashed, limited, deduplicated, sniffed, moved
 * into place) and who owns them in the store, against a real data directory. */
#include "store_test.h"

#include <dirent.h>

static int64_t count_files(const char *path) {
    DIR *d = opendir(path);
    int64_t n = 0;
    if (!d)
        return -1;
    for (struct dirent *de; (de = readdir(d));)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static const unsigned char png_1x1[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
    0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
    0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78,
    0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00,
    0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

/* Uploads data in two writes. */
static am_rc upload(const void *data, size_t len, int64_t max_bytes, const char *expect,
                    struct am_blob_info *info) {
    struct am_blob_upload *u = NULL;
    am_rc rc = am_blob_upload_begin(dir, max_bytes, &u);
    if (rc)
        return rc;
    if ((rc = am_blob_upload_write(u, data, len / 2)) != AM_OK ||
        (rc = am_blob_upload_write(u, (const char *)data + len / 2, len - len / 2)) != AM_OK) {
        am_blob_upload_abort(u);
        return rc;
    }
    return am_blob_upload_finish(u, expect, info);
}

static void test_blobs(int64_t user, int64_t other) {
    char tmp[128], path[256], expect[65], upper[65];
    struct am_blob_info info, again;
    const char *text = "hello, this is a plain text blob\n";
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    am_sha256_hex(text, strlen(text), expect);
    /* Verified upload; the upper-case spelling of the hash is the same hash. */
    for (int i = 0; i < 65; i++)
        upper[i] = (char)(expect[i] >= 'a' && expect[i] <= 'f' ? expect[i] - 32 : expect[i]);
    CHECK(upload(text, strlen(text), 1 << 20, upper, &info) == AM_OK);
    CHECK(!strcmp(info.sha256, expect) && info.size == (int64_t)strlen(text) &&
          !strcmp(info.mime, "text/plain") && info.created_ns > 0);
    CHECK(am_blob_path(dir, expect, path, sizeof path) == AM_OK);
    char buf[128] = "";
    FILE *f = fopen(path, "rb");
    CHECK(f && fread(buf, 1, sizeof buf - 1, f) == strlen(text) && !strcmp(buf, text));
    if (f)
        fclose(f);
    CHECK(count_files(tmp) == 0);
    /* The same content again: one file, the temporary copy gone. */
    CHECK(upload(text, strlen(text), 1 << 20, NULL, &again) == AM_OK &&
          !strcmp(again.sha256, expect));
    char sub[128];
    snprintf(sub, sizeof sub, "%s/blobs/%.2s", dir, expect);
    CHECK(count_files(sub) == 1 && count_files(tmp) == 0);
    /* Hash mismatch: refused, nothing kept. */
    char wrong[65];
    am_sha256_hex("other", 5, wrong);
    CHECK(upload("different bytes", 15, 1 << 20, wrong, &info) == AM_EINVAL);
    CHECK(count_files(tmp) == 0 &&
          am_blob_path(dir, info.sha256, path, sizeof path) == AM_ENOTFOUND);
    CHECK(upload("different bytes", 15, 1 << 20, "abc", &info) == AM_EINVAL);
    /* Over the limit: refused at the write that crosses it, the file gone at once. */
    struct am_blob_upload *u = NULL;
    CHECK(am_blob_upload_begin(dir, 10, &u) == AM_OK);
    CHECK(am_blob_upload_write(u, "12345678", 8) == AM_OK);
    CHECK(count_files(tmp) == 1);
    CHECK(am_blob_upload_write(u, "9abc", 4) == AM_ELIMIT);
    CHECK(count_files(tmp) == 0);
    am_blob_upload_abort(u);
    CHECK(am_blob_upload_begin(dir, 10, &u) == AM_OK);
    CHECK(am_blob_upload_write(u, "0123456789", 10) == AM_OK); /* exactly the limit */
    CHECK(am_blob_upload_finish(u, NULL, &info) == AM_OK && info.size == 10);
    /* Abort leaves nothing. */
    CHECK(am_blob_upload_begin(dir, 10, &u) == AM_OK && am_blob_upload_write(u, "x", 1) == AM_OK);
    am_blob_upload_abort(u);
    CHECK(count_files(tmp) == 0);
    /* libmagic looks at the bytes, not at a name. */
    struct am_blob_info png;
    CHECK(upload(png_1x1, sizeof png_1x1, 1 << 20, NULL, &png) == AM_OK);
    CHECK(!strcmp(png.mime, "image/png"));
    CHECK(am_blob_path(dir, "zz", path, sizeof path) == AM_EINVAL);
    char missing[65];
    am_sha256_hex("never uploaded", 14, missing);
    CHECK(am_blob_path(dir, missing, path, sizeof path) == AM_ENOTFOUND);

    /* Ownership: recorded through the writer, idempotent. */
    CHECK(OPS->blob_get(S, user, png.sha256, &again) == AM_ENOTFOUND);
    CHECK(OPS->blob_add(S, user, &png) == AM_OK && OPS->blob_add(S, user, &png) == AM_OK);
    CHECK(OPS->blob_get(S, user, png.sha256, &again) == AM_OK && again.size == png.size &&
          !strcmp(again.mime, "image/png") && !strcmp(again.sha256, png.sha256));
    struct am_blob_info bad = png;
    snprintf(bad.sha256, sizeof bad.sha256, "not-hex");
    CHECK(OPS->blob_add(S, user, &bad) == AM_EINVAL);
    CHECK(OPS->blob_add(S, user, &info) == AM_OK);
    /* Events may name only blobs their user owns. */
    struct am_store_stats before, after;
    OPS->stats(S, &before);
    struct am_event e[2];
    struct am_item_result r[2];
    ev_init(&e[0], "image.photo", "cam", T0, "photo-1", "{}");
    snprintf(e[0].blob, sizeof e[0].blob, "%s", png.sha256);
    ev_init(&e[1], "image.photo", "cam", T0 + 1, "photo-2", "{}");
    snprintf(e[1].blob, sizeof e[1].blob, "%s", missing);
    CHECK(OPS->append(S, user, e, 2, r) == AM_OK);
    CHECK(r[0].status == AM_ITEM_STORED && r[1].status == AM_ITEM_REJECTED &&
          strstr(r[1].reason, "unknown blob"));
    struct am_event g;
    CHECK(OPS->get_event(S, user, r[0].id, &g) == AM_OK && !strcmp(g.blob, png.sha256));
    am_event_clear(&g);
    evs_clear(e, 2);
    OPS->stats(S, &after);
    CHECK(after.events_rejected == before.events_rejected + 1 &&
          after.events_stored == before.events_stored + 1);
    /* Another user neither sees the blob nor may name it, though the file is there. */
    CHECK(OPS->blob_get(S, other, png.sha256, &again) == AM_ENOTFOUND);
    ev_init(&e[0], "image.photo", "cam", T0, "photo-1", "{}");
    snprintf(e[0].blob, sizeof e[0].blob, "%s", png.sha256);
    CHECK(OPS->append(S, other, e, 1, r) == AM_OK && r[0].status == AM_ITEM_REJECTED &&
          strstr(r[0].reason, "unknown blob") && r[0].id == 0 && e[0].id == 0);
    evs_clear(e, 1);
    /* Once it has uploaded the same bytes, it owns them too (one file, two owners). */
    CHECK(OPS->blob_add(S, other, &png) == AM_OK);
    CHECK(OPS->blob_get(S, other, png.sha256, &again) == AM_OK);
    CHECK(db_int("SELECT count(*) FROM blobs WHERE sha256 = ?1", png.sha256) == 1);
    CHECK(db_int("SELECT count(*) FROM user_blobs WHERE sha256 = ?1", png.sha256) == 2);
}

int main(void) {
    if (!store_test_begin())
        return 2;
    CHECK(store_open(&st, 0, 0) == AM_OK);
    if (st.ops) {
        int64_t a = user_add("anna"), b = user_add("bert");
        test_blobs(a, b);
        am_store_close(&st);
    }
    return store_test_end();
}
