/**
 * A quarantined tool's warning: the server changed the tool since the user
 * accepted it, or offers a new one. **Review** shows what changed, field by
 * field (a line diff of the old and new definition); **Accept**, below it,
 * lets agents use the tool again.
 */
import * as React from 'react';

import type { DodoModel } from '../model';
import { toAPIError } from '../remote';
import type { ITool, IToolReview } from '../tokens';
import { diffDefinitions, type IDiffLine } from '../toolDiff';
import { domId } from './common';

/**
 * Props of `ToolReview`.
 */
export interface IToolReviewProps {
  model: DodoModel;
  tool: ITool;
}

export function ToolReview({ model, tool }: IToolReviewProps): React.ReactElement | null {
  const [open, setOpen] = React.useState(false);
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  if (!tool.quarantine) {
    return null;
  }
  const review = tool.review ?? null;
  const isNew = tool.quarantine === 'new';
  const panelId = domId('tool', tool.name, 'review');

  const accept = async (): Promise<void> => {
    if (!review) {
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await model.acceptTool(tool.name, review.digest);
    } catch (reason) {
      const failure = toAPIError(reason);
      setError(
        failure.status === 404
          ? `${failure.message} The server may have changed the tool again: refresh and review it anew.`
          : failure.message
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <div
      className="jp-dodo-Note jp-dodo-Note-warn jp-dodo-Quarantine"
      role="status"
      aria-label={`${tool.original_name} waits for your review`}
    >
      <strong>
        {isNew
          ? 'New tool: accept it before agents can use it.'
          : 'This server changed this tool since you accepted it.'}
      </strong>
      <div>
        {isNew
          ? 'Agents cannot see or call it until you do.'
          : 'Agents cannot see or call it until you review the change and accept it.'}
      </div>
      <div className="jp-dodo-Actions">
        <button
          type="button"
          className="jp-mod-styled"
          aria-expanded={open}
          aria-controls={panelId}
          aria-label={`Review ${tool.original_name}`}
          onClick={() => setOpen(!open)}
        >
          {open ? 'Hide review' : 'Review'}
        </button>
      </div>
      {open && (
        <div id={panelId} className="jp-dodo-Review">
          {review ? (
            <>
              <DefinitionDiff review={review} />
              <div className="jp-dodo-Actions">
                <button
                  type="button"
                  className="jp-mod-styled jp-mod-accept"
                  disabled={busy}
                  aria-label={`Accept ${tool.original_name}`}
                  onClick={() => void accept()}
                >
                  {busy ? 'Accepting…' : 'Accept'}
                </button>
              </div>
            </>
          ) : (
            <div className="jp-dodo-Message">
              The change cannot be shown right now: refresh the tools and review again.
            </div>
          )}
        </div>
      )}
      {error && (
        <div className="jp-dodo-Field-error" role="alert">
          {error}
        </div>
      )}
    </div>
  );
}

/**
 * The changed fields of a definition, each as a line diff.
 */
export function DefinitionDiff({ review }: { review: IToolReview }): React.ReactElement {
  const fields = diffDefinitions(review.before, review.after);
  return (
    <div className="jp-dodo-Diff" aria-label="What changed">
      <div className="jp-dodo-Diff-legend">
        {review.before
          ? 'Lines marked − are what you accepted; lines marked + are what the server says now.'
          : 'What the server says about the tool:'}
      </div>
      {fields.length === 0 && <div className="jp-dodo-Message">No visible difference.</div>}
      {fields.map(field => (
        <section key={field.field} className="jp-dodo-Diff-field" data-field={field.field}>
          <div className="jp-dodo-Diff-title">{field.label}</div>
          <pre className="jp-dodo-Diff-lines">
            {field.lines.map((line, index) => (
              <DiffLine key={index} line={line} />
            ))}
          </pre>
        </section>
      ))}
    </div>
  );
}

function DiffLine({ line }: { line: IDiffLine }): React.ReactElement {
  if (line.kind === 'removed') {
    return (
      <del className="jp-dodo-Diff-line jp-dodo-Diff-removed">
        <span aria-hidden="true">− </span>
        {line.text}
      </del>
    );
  }
  if (line.kind === 'added') {
    return (
      <ins className="jp-dodo-Diff-line jp-dodo-Diff-added">
        <span aria-hidden="true">+ </span>
        {line.text}
      </ins>
    );
  }
  return (
    <span className="jp-dodo-Diff-line jp-dodo-Diff-same">
      <span aria-hidden="true">{'  '}</span>
      {line.text}
    </span>
  );
}
