/**
 * A filled-in prompt: its description and messages, each with its role;
 * text stays text, raster images are shown, embedded resources as resources
 * (`ResourceView.tsx`), links by URI.
 */
import * as React from 'react';

import { IMAGE_TYPES } from '../mcpContent';
import type { IContentBlock, IGetPromptResult } from '../tokens';
import { ResourceContent } from './ResourceView';

/**
 * Props of `PromptMessages`.
 */
export interface IPromptMessagesProps {
  result: IGetPromptResult;
  /**
   * The prompt's name as people read it, for the accessible name.
   */
  label: string;
}

export function PromptMessages({ result, label }: IPromptMessagesProps): React.ReactElement {
  const messages = Array.isArray(result.messages) ? result.messages : [];
  return (
    <div
      className="jp-dodo-Result jp-dodo-PromptMessages"
      role="region"
      aria-label={`Messages of ${label}`}
    >
      <div className="jp-dodo-Result-title">
        {messages.length} message{messages.length === 1 ? '' : 's'}
      </div>
      {result.description && <div className="jp-dodo-Tool-description">{result.description}</div>}
      {messages.map((message, index) => (
        <div key={index} className="jp-dodo-PromptMessage" data-role={message.role}>
          <div className="jp-dodo-PromptMessage-role">{message.role}</div>
          <MessageContent block={message.content ?? { type: 'unknown' }} />
        </div>
      ))}
    </div>
  );
}

function MessageContent({ block }: { block: IContentBlock }): React.ReactElement {
  if (block.type === 'text' && typeof block.text === 'string') {
    return <pre className="jp-dodo-Code jp-dodo-Result-text">{block.text}</pre>;
  }
  if (block.type === 'image' && typeof block.data === 'string') {
    const mime = block.mimeType ?? '';
    if (IMAGE_TYPES.has(mime)) {
      return (
        <img
          className="jp-dodo-Result-image"
          src={`data:${mime};base64,${block.data}`}
          alt={`Image in the prompt (${mime})`}
        />
      );
    }
    return <div className="jp-dodo-Message">An image of type {mime || 'unknown'} (not shown).</div>;
  }
  if (block.type === 'resource' && block.resource) {
    const resource = block.resource;
    return <ResourceContent content={{ ...resource, uri: resource.uri ?? '' }} showUri />;
  }
  if (block.type === 'resource_link' && typeof block.uri === 'string') {
    return (
      <div className="jp-dodo-Result-uri">
        Resource link: {block.uri}
        {typeof block.mimeType === 'string' && <span> ({block.mimeType})</span>}
      </div>
    );
  }
  if (block.type === 'audio') {
    return (
      <div className="jp-dodo-Message">
        Audio ({block.mimeType ?? 'unknown type'}), not played here.
      </div>
    );
  }
  return <pre className="jp-dodo-Code">{JSON.stringify(block, null, 2)}</pre>;
}
