/**
 * Icons of the dodo-jupyter frontend.
 */
import { LabIcon } from '@jupyterlab/ui-components';

// Three linked nodes: a client hub wired to two servers. The `jp-icon3`
// classes let the theme recolor the strokes and fills.
const MCP_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="none" stroke="#616161" stroke-width="2" stroke-linecap="round"
    d="M12 9v3M12 12l-5.5 4.5M12 12l5.5 4.5"/>
  <circle class="jp-icon3" fill="#616161" cx="12" cy="5.5" r="3.5"/>
  <circle class="jp-icon3" fill="#616161" cx="5" cy="18.5" r="3"/>
  <circle class="jp-icon3" fill="#616161" cx="19" cy="18.5" r="3"/>
</svg>`;

/**
 * The MCP side panel's icon.
 */
export const mcpIcon = new LabIcon({ name: 'dodo-jupyter:mcp', svgstr: MCP_SVG });
