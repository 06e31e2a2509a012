/**
 * What reading a resource gave: each content as what it is (`mcpContent.ts`
 * decides): an image, JSON reindented, text, or bytes shown by size with a
 * download button. Nothing is rendered as HTML.
 */
import * as React from 'react';

import { type ContentView, downloadName, formatBytes, viewOf } from '../mcpContent';
import type { IReadResourceResult, IResourceContents } from '../tokens';

/**
 * Props of `ResourceView`.
 */
export interface IResourceViewProps {
  result: IReadResourceResult;
  /**
   * What the contents are of, for the accessible name.
   */
  label: string;
}

export function ResourceView({ result, label }: IResourceViewProps): React.ReactElement {
  const contents = Array.isArray(result.contents) ? result.contents : [];
  return (
    <div
      className="jp-dodo-Result jp-dodo-ResourceView"
      role="region"
      aria-label={`Contents of ${label}`}
    >
      {contents.length === 0 && <div className="jp-dodo-Message">The resource is empty.</div>}
      {contents.map((content, index) => (
        <ResourceContent key={index} content={content} showUri={contents.length > 1} />
      ))}
    </div>
  );
}

/**
 * Props of `ResourceContent`.
 */
export interface IResourceContentProps {
  content: IResourceContents;
  /**
   * Show the content's URI above it (several contents, embedded resources).
   */
  showUri?: boolean;
}

/**
 * One content of a resource (also an embedded resource of a prompt).
 */
export function ResourceContent({ content, showUri }: IResourceContentProps): React.ReactElement {
  const view = viewOf(content);
  return (
    <div className="jp-dodo-ResourceContent" data-kind={view.kind}>
      {showUri && (
        <div className="jp-dodo-Result-uri">
          {content.uri} {view.mime && <span>({view.mime})</span>}
        </div>
      )}
      <ContentBody view={view} uri={content.uri} />
    </div>
  );
}

function ContentBody({ view, uri }: { view: ContentView; uri: string }): React.ReactElement {
  switch (view.kind) {
    case 'image':
      return (
        <>
          <img className="jp-dodo-Result-image" src={view.dataUrl} alt={`${uri} (${view.mime})`} />
          <div className="jp-dodo-ResourceContent-meta">
            {view.mime}, {formatBytes(view.size)}
          </div>
        </>
      );
    case 'json':
    case 'text':
      return (
        <>
          <pre className="jp-dodo-Code jp-dodo-Result-text">{view.text}</pre>
          {view.truncated && (
            <div className="jp-dodo-ResourceContent-meta">
              Only the beginning is shown; read the whole resource from a notebook (%dodo read).
            </div>
          )}
        </>
      );
    case 'binary':
      return (
        <div className="jp-dodo-ResourceContent-binary">
          <span>
            {formatBytes(view.size)} of {view.mime || 'binary data'}
          </span>
          <button
            type="button"
            className="jp-mod-styled"
            aria-label={`Download ${uri}`}
            disabled={view.size === 0}
            onClick={() => download(view.base64, view.mime, downloadName(uri, view.mime))}
          >
            Download
          </button>
        </div>
      );
  }
}

/**
 * Save base64 bytes as a file through the browser's download.
 */
function download(base64: string, mime: string, fileName: string): void {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) {
    bytes[i] = binary.charCodeAt(i);
  }
  const url = URL.createObjectURL(
    new Blob([bytes], { type: mime || 'application/octet-stream' })
  );
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  link.style.display = 'none';
  document.body.appendChild(link);
  link.click();
  link.remove();
  // Late enough for the browser to have started the download.
  window.setTimeout(() => URL.revokeObjectURL(url), 60000);
}
