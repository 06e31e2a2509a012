/**
 * The "What agents may do" part of the catalog entry editor: the entry's
 * `tool_policy` (allow and deny globs, read-only, approval, a rate limit,
 * review of new tools). Its draft is text while the administrator types; the
 * server validates it and names each bad field (`tool_policy.deny`, ...).
 */
import * as React from 'react';

import type { Approval, IToolPolicy } from '../tokens';
import { Field } from './common';

/**
 * A policy as the editor holds it.
 */
export interface IPolicyDraft {
  allow: string;
  deny: string;
  read_only: boolean;
  approval: Approval;
  calls_per_minute: string;
  review_new_tools: boolean;
}

export function policyDraftOf(policy: IToolPolicy | null | undefined): IPolicyDraft {
  return {
    allow: (policy?.allow ?? []).join(', '),
    deny: (policy?.deny ?? []).join(', '),
    read_only: policy?.read_only ?? false,
    approval: policy?.approval ?? 'never',
    calls_per_minute: policy?.calls_per_minute ? String(policy.calls_per_minute) : '',
    review_new_tools: policy?.review_new_tools ?? false
  };
}

function globs(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map(g => g.trim())
    .filter(Boolean);
}

/**
 * The `tool_policy` body of a draft (a rate limit that is not a number is sent
 * as typed, for the server to name).
 */
export function policyBodyOf(draft: IPolicyDraft): Record<string, unknown> {
  const rate = draft.calls_per_minute.trim();
  return {
    allow: globs(draft.allow),
    deny: globs(draft.deny),
    read_only: draft.read_only,
    approval: draft.approval,
    calls_per_minute: rate === '' ? null : /^\d+$/.test(rate) ? Number(rate) : rate,
    review_new_tools: draft.review_new_tools
  };
}

/**
 * Props of `PolicyFields`.
 */
export interface IPolicyFieldsProps {
  prefix: string;
  draft: IPolicyDraft;
  onChange: (draft: IPolicyDraft) => void;
  errorFor: (...names: string[]) => string | undefined;
}

export function PolicyFields({
  prefix,
  draft,
  onChange,
  errorFor
}: IPolicyFieldsProps): React.ReactElement {
  const set = (changes: Partial<IPolicyDraft>): void => onChange({ ...draft, ...changes });
  const id = (name: string): string => `${prefix}-policy-${name}`;
  const changed =
    !!draft.allow || !!draft.deny || draft.read_only || draft.approval !== 'never';
  return (
    <details className="jp-dodo-Fieldset" open={changed || !!errorFor('tool_policy')}>
      <summary>What agents may do (tool policy)</summary>
      <Field
        id={id('deny')}
        label="Deny tools"
        hint="Tool-name globs agents may never use, e.g. delete_*, *_admin_*. Deny wins."
        error={errorFor('tool_policy.deny')}
      >
        {props => (
          <input
            {...props}
            className="jp-mod-styled jp-dodo-Input"
            value={draft.deny}
            onChange={e => set({ deny: e.target.value })}
          />
        )}
      </Field>
      <Field
        id={id('allow')}
        label="Allow only"
        hint="Empty: every tool the server offers (minus denied ones)."
        error={errorFor('tool_policy.allow')}
      >
        {props => (
          <input
            {...props}
            className="jp-mod-styled jp-dodo-Input"
            value={draft.allow}
            onChange={e => set({ allow: e.target.value })}
          />
        )}
      </Field>
      <Field
        id={id('approval')}
        label="Ask the user before"
        hint="A call waits for its owner's decision in JupyterLab."
        error={errorFor('tool_policy.approval')}
      >
        {props => (
          <select
            {...props}
            className="jp-mod-styled"
            value={draft.approval}
            onChange={e => set({ approval: e.target.value as Approval })}
          >
            <option value="never">no call</option>
            <option value="destructive">destructive calls</option>
            <option value="always">every call</option>
          </select>
        )}
      </Field>
      <Field
        id={id('calls_per_minute')}
        label="Calls per minute (each user)"
        hint="Empty: no limit."
        error={errorFor('tool_policy.calls_per_minute')}
      >
        {props => (
          <input
            {...props}
            className="jp-mod-styled jp-dodo-Input"
            inputMode="numeric"
            value={draft.calls_per_minute}
            onChange={e => set({ calls_per_minute: e.target.value })}
          />
        )}
      </Field>
      <label className="jp-dodo-Check">
        <input
          type="checkbox"
          checked={draft.read_only}
          onChange={e => set({ read_only: e.target.checked })}
        />
        Read-only tools only (annotated readOnlyHint)
      </label>
      <label className="jp-dodo-Check">
        <input
          type="checkbox"
          checked={draft.review_new_tools}
          onChange={e => set({ review_new_tools: e.target.checked })}
        />
        New tools wait for the user's review
      </label>
    </details>
  );
}
