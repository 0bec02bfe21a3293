/**
 * Where the deployed stack keeps the playback token keys (infra/playback-distribution.ts), so that
 * `playback-token` finds them from the config alone: one secret per backup bucket.
 */
export function playbackTokenSecretName(bucket: string): string {
  return `flussonic-backup/${bucket}/playback-token-keys`;
}
