/**
 * What a tool call returned: text, images, resources and structured content,
 * or the tool's own error. Nothing is rendered as HTML: text stays text, and
 * images are shown only for raster `image/*` types as data URLs.
 */
import * as React from 'react';

import type { IContentBlock, IToolResult } from '../tokens';

const SAFE_IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

/**
 * Props of `ToolResult`.
 */
export interface IToolResultProps {
  result: IToolResult;
}

export function ToolResult({ result }: IToolResultProps): React.ReactElement {
  const content = Array.isArray(result.content) ? result.content : [];
  const hasStructured = result.structuredContent !== undefined && result.structuredContent !== null;
  return (
    <div
      className={`jp-dodo-Result${result.isError ? ' jp-dodo-Result-error' : ''}`}
      role={result.isError ? 'alert' : 'status'}
      aria-label={result.isError ? 'Tool error' : 'Tool result'}
    >
      <div className="jp-dodo-Result-title">{result.isError ? 'Tool error' : 'Result'}</div>
      {content.length === 0 && !hasStructured && (
        <div className="jp-dodo-Message">The tool returned nothing.</div>
      )}
      {content.map((block, index) => (
        <ContentBlock key={index} block={block} />
      ))}
      {hasStructured && (
        <details className="jp-dodo-Result-structured" open={content.length === 0}>
          <summary>Structured content</summary>
          <pre className="jp-dodo-Code">{JSON.stringify(result.structuredContent, null, 2)}</pre>
        </details>
      )}
    </div>
  );
}

function ContentBlock({ block }: { block: IContentBlock }): React.ReactElement {
  if (block.type === 'text' && typeof block.text === 'string') {
    return <pre className="jp-dodo-Code jp-dodo-Result-text">{prettyText(block.text)}</pre>;
  }
  if (block.type === 'image' && typeof block.data === 'string') {
    const mime = block.mimeType ?? '';
    if (SAFE_IMAGE_TYPES.has(mime)) {
      return (
        <img
          className="jp-dodo-Result-image"
          src={`data:${mime};base64,${block.data}`}
          alt={`Image returned by the tool (${mime})`}
        />
      );
    }
    return <div className="jp-dodo-Message">An image of type {mime || 'unknown'} (not shown).</div>;
  }
  if (block.type === 'resource' && block.resource) {
    const { uri, text, mimeType } = block.resource;
    return (
      <div className="jp-dodo-Result-resource">
        <div className="jp-dodo-Result-uri">
          {uri ?? 'resource'} {mimeType && <span>({mimeType})</span>}
        </div>
        {typeof text === 'string' && <pre className="jp-dodo-Code">{text}</pre>}
      </div>
    );
  }
  return <pre className="jp-dodo-Code">{JSON.stringify(block, null, 2)}</pre>;
}

/**
 * JSON text reindented for reading; anything else unchanged.
 */
function prettyText(text: string): string {
  const trimmed = text.trim();
  if ((trimmed.startsWith('{') || trimmed.startsWith('[')) && trimmed.length < 200000) {
    try {
      return JSON.stringify(JSON.parse(trimmed), null, 2);
    } catch {
      return text;
    }
  }
  return text;
}
