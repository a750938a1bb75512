import { useSyncExternalStore } from 'react';
import { apiFetch, apiJson } from './api';
import type { StoredFile } from './types';

/**
 * The files uploaded through the console, newest first: the choices of the file pickers in
 * job forms. The API lists no one's files, so the console remembers its own uploads (in
 * memory, like the session) and files looked up by id.
 */
let files: StoredFile[] = [];
const listeners = new Set<() => void>();

function publish(next: StoredFile[]): void {
  files = next;
  for (const listener of listeners) listener();
}

export function rememberFile(file: StoredFile): void {
  publish([file, ...files.filter((known) => known.id !== file.id)]);
}

export function forgetFiles(): void {
  publish([]);
}

export function useUploads(): StoredFile[] {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => files,
  );
}

export async function uploadFile(file: File): Promise<StoredFile> {
  const body = new FormData();
  body.append('file', file, file.name);
  const stored = await apiJson<StoredFile>('/v1/files', { method: 'POST', body });
  rememberFile(stored);
  return stored;
}

/** Saves a file the caller owns to the user's disk: the content route wants the bearer token, so a plain link cannot fetch it. */
export async function downloadFile(fileId: string): Promise<void> {
  const meta = await apiJson<StoredFile>(`/v1/files/${encodeURIComponent(fileId)}`);
  const response = await apiFetch(`/v1/files/${encodeURIComponent(fileId)}/content`, { headers: { accept: '*/*' } });
  const url = URL.createObjectURL(await response.blob());
  try {
    const anchor = document.createElement('a');
    anchor.href = url;
    anchor.download = meta.name || `${fileId}.bin`;
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
  } finally {
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }
}
