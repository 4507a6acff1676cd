import { createRouter, createWebHistory } from 'vue-router'
import OverviewPage from './pages/OverviewPage.vue'
import ExplorerPage from './pages/ExplorerPage.vue'
import LivePage from './pages/LivePage.vue'
import AlertsPage from './pages/AlertsPage.vue'
import ContextPage from './pages/ContextPage.vue'
import TracePage from './pages/TracePage.vue'
import OpenViewPage from './pages/OpenViewPage.vue'
import NotFoundPage from './pages/NotFoundPage.vue'

// The dashboard is small: one bundle, no lazy route chunks.
export const router = createRouter({
  history: createWebHistory('/'),
  routes: [
    { path: '/', name: 'overview', component: OverviewPage, meta: { title: 'Overview' } },
    { path: '/explorer', name: 'explorer', component: ExplorerPage, meta: { title: 'Explorer' } },
    { path: '/live', name: 'live', component: LivePage, meta: { title: 'Live' } },
    { path: '/alerts', name: 'alerts', component: AlertsPage, meta: { title: 'Alerts' } },
    { path: '/context/:id', name: 'context', component: ContextPage, meta: { title: 'Context' } },
    { path: '/trace/:traceId', name: 'trace', component: TracePage, meta: { title: 'Trace' } },
    { path: '/v/:id', name: 'view', component: OpenViewPage, meta: { title: 'View' } },
    { path: '/:pathMatch(.*)*', name: 'not-found', component: NotFoundPage, meta: { title: 'Not found' } },
  ],
})

router.afterEach((to) => {
  const t = typeof to.meta.title === 'string' ? to.meta.title : ''
  document.title = t ? `${t} · OgLogStream` : 'OgLogStream'
})
