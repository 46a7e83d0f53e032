/**
 * The first-visit tutorial: six steps from creating a project to starting a generation. It moves
 * on by itself when the person does what a step asks; it can be skipped and resumed, and where it
 * stands is kept in localStorage["studio.tutorial"].
 */
import { readJson, writeJson } from './storage';

export type Milestone = 'created' | 'opened' | 'node-added' | 'connected' | 'generated';

export interface Step {
	title: string;
	text: string;
	/** What the person does to finish the step (null: a button moves on). */
	until: Milestone | null;
}

export const STEPS: Step[] = [
	{
		title: 'Create a project from a template',
		text: 'Name your film, pick a story template (hover or focus one to see its arc) and press Create.',
		until: 'created'
	},
	{ title: 'Open your project', text: 'Open the project’s card. The studio keeps a copy on this device, so it works offline too.', until: 'opened' },
	{
		title: 'Add a node',
		text: 'Choose “Prompt” in the canvas toolbar and press Add node (or the N key). Write what the image should show in Properties.',
		until: 'node-added'
	},
	{
		title: 'Connect two nodes',
		text: 'Add an “Image generator” node and drag from the Prompt’s right-hand dot to the generator’s “prompt” input.',
		until: 'connected'
	},
	{
		title: 'Start a generation',
		text: 'Select the Image generator and press Generate (or G). Its progress appears on the right.',
		until: 'generated'
	},
	{
		title: 'You are set',
		text: 'Every change is saved on this device and reaches the server’s Git history by itself. Press ? for shortcuts.',
		until: null
	}
];

const KEY = 'studio.tutorial';

interface Saved {
	step: number;
	skipped: boolean;
	done: boolean;
}

class Tutorial {
	step = $state(0);
	skipped = $state(false);
	done = $state(false);

	constructor() {
		const saved = readJson<Partial<Saved>>(KEY, {});
		this.step = Math.min(STEPS.length - 1, Math.max(0, Number(saved.step) || 0));
		this.skipped = saved.skipped === true;
		this.done = saved.done === true;
	}

	get active(): boolean {
		return !this.skipped && !this.done;
	}

	get current(): Step {
		return STEPS[this.step] ?? STEPS[0]!;
	}

	private save(): void {
		writeJson(KEY, { step: this.step, skipped: this.skipped, done: this.done });
	}

	/** The person did something; if it is what the current step waits for, move on. */
	reached(milestone: Milestone): void {
		if (!this.active) return;
		const index = STEPS.findIndex((s) => s.until === milestone);
		if (index >= this.step) {
			this.step = Math.min(STEPS.length - 1, index + 1);
			this.save();
		}
	}

	next(): void {
		if (this.step >= STEPS.length - 1) this.finish();
		else {
			this.step += 1;
			this.save();
		}
	}

	skip(): void {
		this.skipped = true;
		this.save();
	}

	resume(): void {
		this.skipped = false;
		this.done = false;
		this.save();
	}

	finish(): void {
		this.done = true;
		this.save();
	}
}

export const tutorial = new Tutorial();
