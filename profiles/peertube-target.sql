-- The new video platform's schema that profiles/peertube.toml fills (ferry runs it before an
-- import; every statement is idempotent). Ids are uuid: UUIDv5 of source host, entity and
-- PeerTube id (see docs/profiles.md), so a re-run updates rows instead of duplicating them.
-- source_host says which instance a row came from (several can be merged into one platform).
--
-- comments.parent_id and comments.thread_id carry no foreign key on purpose: PeerTube ids do
-- not order replies after their parents (a reply can have a lower id than its parent), and the
-- deterministic ids make the reference right whatever order rows arrive in.

CREATE TABLE IF NOT EXISTS users (
    id uuid PRIMARY KEY,
    source_host text NOT NULL,
    username text NOT NULL,
    email text NOT NULL,
    email_verified boolean,
    display_name text NOT NULL,
    description text,
    role text NOT NULL CHECK (role IN ('admin', 'moderator', 'user')),
    password_hash text,
    password_scheme text,
    must_reset_password boolean NOT NULL DEFAULT false,
    two_factor_enabled boolean NOT NULL DEFAULT false,
    blocked boolean NOT NULL DEFAULT false,
    -- PeerTube's upload limits in bytes: total and per 24 hours; -1 means unlimited.
    video_quota_bytes bigint NOT NULL DEFAULT -1,
    video_quota_daily_bytes bigint NOT NULL DEFAULT -1,
    avatar_path text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS channels (
    id uuid PRIMARY KEY,
    source_host text NOT NULL,
    owner_id uuid REFERENCES users (id) ON DELETE CASCADE,
    handle text NOT NULL,
    display_name text NOT NULL,
    description text,
    support text,
    is_local boolean NOT NULL,
    avatar_path text,
    banner_path text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS videos (
    id uuid PRIMARY KEY,
    source_host text NOT NULL,
    uuid uuid NOT NULL,
    channel_id uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    name text NOT NULL,
    description text,
    support text,
    privacy text NOT NULL CHECK (privacy IN ('public', 'unlisted', 'private', 'internal', 'password_protected')),
    state text NOT NULL,
    comments_policy text NOT NULL,
    duration_s integer NOT NULL,
    views bigint NOT NULL DEFAULT 0,
    likes bigint NOT NULL DEFAULT 0,
    dislikes bigint NOT NULL DEFAULT 0,
    language text,
    category integer,
    licence integer,
    nsfw boolean NOT NULL,
    is_live boolean NOT NULL DEFAULT false,
    download_enabled boolean NOT NULL DEFAULT true,
    is_local boolean NOT NULL,
    tags text[] NOT NULL DEFAULT '{}',
    thumbnail_path text,
    preview_path text,
    -- One entry per file on disk: {"kind": "web_video"|"hls", "resolution", "size", "fps", "path"}.
    files jsonb NOT NULL DEFAULT '[]',
    published_at timestamptz NOT NULL,
    originally_published_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS videos_source_uuid ON videos (source_host, uuid);

CREATE TABLE IF NOT EXISTS captions (
    id uuid PRIMARY KEY,
    source_host text NOT NULL,
    video_id uuid NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    language text NOT NULL,
    path text NOT NULL,
    automatically_generated boolean NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS comments (
    id uuid PRIMARY KEY,
    source_host text NOT NULL,
    video_id uuid NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    author_id uuid REFERENCES users (id) ON DELETE SET NULL,
    parent_id uuid,
    thread_id uuid NOT NULL,
    body text,
    status text NOT NULL CHECK (status IN ('published', 'pending', 'deleted')),
    deleted_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS comments_thread ON comments (thread_id);

CREATE TABLE IF NOT EXISTS playlists (
    id uuid PRIMARY KEY,
    source_host text NOT NULL,
    uuid uuid NOT NULL,
    owner_id uuid REFERENCES users (id) ON DELETE CASCADE,
    channel_id uuid REFERENCES channels (id) ON DELETE SET NULL,
    kind text NOT NULL CHECK (kind IN ('regular', 'watch_later')),
    name text NOT NULL,
    description text,
    privacy text NOT NULL CHECK (privacy IN ('public', 'unlisted', 'private')),
    thumbnail_path text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS playlist_items (
    id uuid PRIMARY KEY,
    source_host text NOT NULL,
    playlist_id uuid NOT NULL REFERENCES playlists (id) ON DELETE CASCADE,
    video_id uuid NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    position integer NOT NULL,
    start_s integer,
    stop_s integer,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS subscriptions (
    id uuid PRIMARY KEY,
    source_host text NOT NULL,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel_id uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- Chapters of a video, by start time.
CREATE TABLE IF NOT EXISTS chapters (
    id uuid PRIMARY KEY,
    source_host text NOT NULL,
    video_id uuid NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    timecode_s integer NOT NULL,
    title text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS chapters_video ON chapters (video_id, timecode_s);

-- Who rated what (the per-video totals are videos.likes and videos.dislikes).
CREATE TABLE IF NOT EXISTS ratings (
    id uuid PRIMARY KEY,
    source_host text NOT NULL,
    video_id uuid NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rating text NOT NULL CHECK (rating IN ('like', 'dislike')),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ratings_user_video ON ratings (user_id, video_id);

-- The file an uploader sent: its original name, and the kept original (path under the media
-- root, NULL when the instance did not keep it).
CREATE TABLE IF NOT EXISTS video_sources (
    id uuid PRIMARY KEY,
    source_host text NOT NULL,
    video_id uuid NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    original_filename text NOT NULL,
    path text,
    resolution integer,
    width integer,
    height integer,
    fps integer,
    size_bytes bigint,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- A video's storyboard: one sprite image of thumbnails for the seek bar.
CREATE TABLE IF NOT EXISTS storyboards (
    id uuid PRIMARY KEY,
    source_host text NOT NULL,
    video_id uuid NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    path text NOT NULL,
    total_width integer NOT NULL,
    total_height integer NOT NULL,
    sprite_width integer NOT NULL,
    sprite_height integer NOT NULL,
    sprite_duration_s integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- A video's HLS streaming playlist: the master playlist a player opens (its name is random in
-- PeerTube), the segments' SHA-256 file, and one entry per variant:
-- {"resolution", "fps", "size", "playlist_path" (the variant .m3u8), "file_path" (its fragmented mp4)}.
CREATE TABLE IF NOT EXISTS streaming_playlists (
    id uuid PRIMARY KEY,
    source_host text NOT NULL,
    video_id uuid NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('hls')),
    master_path text NOT NULL,
    segments_sha256_path text,
    variants jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
-- issue 14: access. Who may watch a video on this platform: its privacy (public: everyone, in
-- lists; unlisted: anyone with the link; internal: signed-in users; password_protected: anyone
-- with the link and one of its video_passwords; private: the owner), but only in the states
-- published, waiting_for_live and live_ended (other states: the owner only), and never while
-- moderation_state is 'blocked' (the owner and moderators only, with blocked_reason shown).
-- (Added with ALTER, apart from the table above.)
ALTER TABLE videos ADD COLUMN IF NOT EXISTS moderation_state text NOT NULL DEFAULT 'none'
    CHECK (moderation_state IN ('none', 'blocked'));
ALTER TABLE videos ADD COLUMN IF NOT EXISTS blocked_reason text;
ALTER TABLE videos ADD COLUMN IF NOT EXISTS blocked_at timestamptz;

-- The passwords of a password-protected video, as PeerTube 6.3 keeps them (clear text, checked
-- as typed); any one of them opens the video.
CREATE TABLE IF NOT EXISTS video_passwords (
    id uuid PRIMARY KEY,
    source_host text NOT NULL,
    video_id uuid NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    password text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS video_passwords_video_password ON video_passwords (video_id, password);
