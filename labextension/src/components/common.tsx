/**
 * Small building blocks shared by the panel's sections.
 */
import { Clipboard } from '@jupyterlab/apputils';
import { checkIcon, copyIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { DodoAPIError } from '../handler';

/**
 * Props of `CopyButton`.
 */
export interface ICopyButtonProps {
  text: string;
  /**
   * What is copied, for the accessible name ("Copy <label>").
   */
  label: string;
}

/**
 * A button that copies `text` to the clipboard and says so for a moment.
 */
export function CopyButton({ text, label }: ICopyButtonProps): React.ReactElement {
  const [copied, setCopied] = React.useState(false);
  React.useEffect(() => {
    if (!copied) {
      return;
    }
    const timer = window.setTimeout(() => setCopied(false), 1500);
    return () => window.clearTimeout(timer);
  }, [copied]);
  const Icon = copied ? checkIcon : copyIcon;
  return (
    <button
      type="button"
      className="jp-dodo-CopyButton jp-mod-styled"
      aria-label={`Copy ${label}`}
      title={`Copy ${label}`}
      onClick={() => {
        Clipboard.copyToSystem(text);
        setCopied(true);
      }}
    >
      <Icon.react tag="span" elementSize="small" />
      <span>{copied ? 'Copied' : 'Copy'}</span>
    </button>
  );
}

/**
 * Props of `ErrorNote`.
 */
export interface IErrorNoteProps {
  title: string;
  error: DodoAPIError | string | null;
  children?: React.ReactNode;
}

/**
 * A failure, with the server's own words.
 */
export function ErrorNote({ title, error, children }: IErrorNoteProps): React.ReactElement | null {
  if (!error) {
    return null;
  }
  const message = typeof error === 'string' ? error : error.message;
  return (
    <div className="jp-dodo-Note jp-dodo-Note-error" role="alert">
      <strong>{title}</strong>
      <div>{message}</div>
      {children}
    </div>
  );
}

/**
 * A neutral note: an empty state, a hint, a warning.
 */
export function Note({
  kind = 'info',
  children
}: {
  kind?: 'info' | 'warn';
  children: React.ReactNode;
}): React.ReactElement {
  return (
    <div className={`jp-dodo-Note jp-dodo-Note-${kind}`} role={kind === 'warn' ? 'status' : undefined}>
      {children}
    </div>
  );
}

/**
 * A labelled input row with an optional hint and error, wired up for screen
 * readers (`aria-describedby`, `aria-invalid`).
 */
export function Field({
  id,
  label,
  hint,
  error,
  required,
  children
}: {
  id: string;
  label: string;
  hint?: string;
  error?: string;
  required?: boolean;
  children: (props: {
    id: string;
    'aria-describedby'?: string;
    'aria-invalid'?: boolean;
    'aria-required'?: boolean;
  }) => React.ReactNode;
}): React.ReactElement {
  const hintId = hint ? `${id}-hint` : undefined;
  const errorId = error ? `${id}-error` : undefined;
  const describedBy = [hintId, errorId].filter(Boolean).join(' ') || undefined;
  return (
    <div className={`jp-dodo-Field${error ? ' jp-mod-invalid' : ''}`}>
      <label
        className={`jp-dodo-Field-label${required ? ' jp-mod-required' : ''}`}
        htmlFor={id}
      >
        {label}
      </label>
      {children({
        id,
        'aria-describedby': describedBy,
        'aria-invalid': error ? true : undefined,
        'aria-required': required ? true : undefined
      })}
      {hint && (
        <div className="jp-dodo-Field-hint" id={hintId}>
          {hint}
        </div>
      )}
      {error && (
        <div className="jp-dodo-Field-error" id={errorId} role="alert">
          {error}
        </div>
      )}
    </div>
  );
}

/**
 * A short, locale-aware date and time for an ISO timestamp.
 */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) {
    return '—';
  }
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? iso
    : date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/**
 * A stable id for DOM elements derived from free text.
 */
export function domId(...parts: string[]): string {
  return 'jp-dodo-' + parts.map(p => p.replace(/[^A-Za-z0-9_-]/g, '_')).join('-');
}

/**
 * A wait in progress: a spinner, what is being waited for and, after a
 * couple of seconds, for how long.
 */
export function Busy({ label }: { label: string }): React.ReactElement {
  const [seconds, setSeconds] = React.useState(0);
  React.useEffect(() => {
    const started = Date.now();
    const timer = window.setInterval(
      () => setSeconds(Math.floor((Date.now() - started) / 1000)),
      1000
    );
    return () => window.clearInterval(timer);
  }, []);
  return (
    <div className="jp-dodo-Message jp-dodo-Busy" role="status">
      <span className="jp-dodo-Spinner" aria-hidden="true" />
      {label}
      {seconds >= 2 && <span className="jp-dodo-Busy-time"> {seconds} s</span>}
    </div>
  );
}
