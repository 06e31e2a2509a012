/**
 * The Lumino side of the panel: each section is a `PanelWithToolbar` (a titled
 * accordion part of the `SidePanel`, with a refresh button in its toolbar)
 * hosting a `ReactWidget` that re-renders on every change of its model.
 */
import {
  PanelWithToolbar,
  ReactWidget,
  refreshIcon,
  ToolbarButton,
  UseSignal,
  type VDomModel
} from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import * as React from 'react';

/**
 * Options of `createSection`.
 */
export interface ISectionOptions<M extends VDomModel> {
  id: string;
  title: string;
  model: M;
  render: (model: M) => React.ReactElement;
  /**
   * Fetches the section's data: at its first showing and on "refresh".
   */
  load: () => Promise<void>;
}

/**
 * A `ReactWidget` that renders `render(model)` and calls `load` the first
 * time it becomes visible (a collapsed section costs no request).
 */
class SectionBody<M extends VDomModel> extends ReactWidget {
  constructor(private readonly _options: ISectionOptions<M>) {
    super();
    this.addClass('jp-dodo-SectionBody');
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._loadOnce();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._loadOnce();
  }

  protected render(): React.ReactElement {
    const { model, render } = this._options;
    return <UseSignal signal={model.stateChanged}>{() => render(model)}</UseSignal>;
  }

  private _loadOnce(): void {
    if (this.isVisible && !this._loaded) {
      this._loaded = true;
      void this._options.load();
    }
  }

  private _loaded = false;
}

/**
 * One titled section of the side panel.
 */
export function createSection<M extends VDomModel>(options: ISectionOptions<M>): PanelWithToolbar {
  const section = new PanelWithToolbar();
  section.id = options.id;
  section.title.label = options.title;
  section.addClass('jp-dodo-SectionPanel');
  section.toolbar.addItem(
    'refresh',
    new ToolbarButton({
      icon: refreshIcon,
      tooltip: `Refresh ${options.title}`,
      label: '',
      onClick: () => void options.load()
    })
  );
  section.addWidget(new SectionBody(options));
  return section;
}
